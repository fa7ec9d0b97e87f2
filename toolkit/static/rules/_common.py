"""Queries over :class:`~toolkit.static.engine.ModuleFacts` shared by the rule modules."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from toolkit.static.engine import Event, ModuleFacts, Scope, const, dotted, kwarg

WRAPPER_RE = re.compile(
    r"(^|[._])(fabric|accelerator|engine|model_engine|deepspeed|strategy|autograd|dist_autograd|booster)$",
    re.I,
)

OPT_NAME_RE = re.compile(r"(^|[._])(opt|optim|optimizer|optimiser)\w*$", re.I)
SCHED_NAME_RE = re.compile(r"(sched|lr_sched|scheduler)", re.I)
SCALER_NAME_RE = re.compile(r"scaler", re.I)


def is_optimizer(mod: ModuleFacts, recv: str) -> bool:
    ks = mod.kinds.get(recv, set())
    if "optimizer" in ks:
        return True
    if ks & {"scheduler", "scaler", "model", "trainer"}:
        return False
    return bool(OPT_NAME_RE.search(recv)) and not SCHED_NAME_RE.search(recv)


def is_scheduler(mod: ModuleFacts, recv: str) -> bool:
    ks = mod.kinds.get(recv, set())
    if "scheduler" in ks:
        return True
    if ks & {"optimizer", "scaler"}:
        return False
    return bool(SCHED_NAME_RE.search(recv))


def is_scaler(mod: ModuleFacts, recv: str) -> bool:
    return "scaler" in mod.kinds.get(recv, set()) or bool(
        SCALER_NAME_RE.search(recv.split(".")[-1] if recv else "")
    )


def backward_events(sc: Scope) -> list[Event]:
    if not sc.events:
        return []
    return [
        e
        for e in sc.events
        if e.attr == "backward"
        and isinstance(e.node, ast.Call)
        and not e.q.startswith("torch.autograd.Function")
        and e.recv not in ("ctx", "self", "super()")
    ]


def loss_expr(e: Event) -> ast.expr | None:
    """What a backward event backpropagates: ``loss`` in ``loss.backward()``,
    ``fabric.backward(loss)``, ``accelerator.backward(loss)``, ``dist_autograd.backward(cid, [loss])``."""
    node = e.node
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return node.args[0] if isinstance(node, ast.Call) and node.args else None
    if WRAPPER_RE.search(e.recv) or e.q.startswith("torch.autograd"):
        if "dist_autograd" in e.recv or e.q.startswith("torch.distributed.autograd"):
            return node.args[1] if len(node.args) > 1 else None
        return node.args[0] if node.args else kwarg(node, "tensors") or kwarg(node, "loss")
    return node.func.value


def wrapped_backward(e: Event) -> bool:
    """A framework's backward (Fabric, Accelerate, DeepSpeed, dist_autograd) rather than a tensor's."""
    return bool(WRAPPER_RE.search(e.recv)) or e.q.startswith("torch.autograd")


def optimizer_params(mod: ModuleFacts, opt: str) -> set[str] | None:
    """Modules whose ``.parameters()`` build optimizer ``opt`` (None when not known)."""
    out: set[str] = set()
    for v, _ in mod.assigns.get(opt, []):
        if isinstance(v, ast.Call):
            for n in ast.walk(v):
                if isinstance(n, ast.Attribute) and n.attr in ("parameters", "named_parameters"):
                    out.add(dotted(n.value))
    return out or None


def grad_owner(mod: ModuleFacts, z: Event) -> str | None:
    """For ``p.grad = None`` inside ``for p in model.parameters()`` (or a zip of several), the
    module whose parameters ``p`` walks; None when not known."""
    if z.q != "<grad=None>":
        return None
    base = z.recv[: -len(".grad")] if z.recv.endswith(".grad") else z.recv
    for lid in reversed(z.loops):
        loop = mod._loop_nodes.get(lid)
        if not isinstance(loop, ast.For | ast.AsyncFor):
            continue
        srcs = _loop_sources(loop.target, loop.iter)
        if base in srcs:
            return srcs[base]
    return None


def _loop_sources(target: ast.AST, it: ast.AST) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(it, ast.Call) and dotted(it.func) == "zip" and isinstance(target, ast.Tuple):
        for t, a in zip(target.elts, it.args, strict=False):
            out.update(_loop_sources(t, a))
        return out
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute):
        if it.func.attr in ("parameters", "named_parameters") and isinstance(target, ast.Name):
            out[target.id] = dotted(it.func.value)
        elif it.func.attr == "named_parameters" and isinstance(target, ast.Tuple):
            if len(target.elts) == 2 and isinstance(target.elts[1], ast.Name):
                out[target.elts[1].id] = dotted(it.func.value)
    return out


def opt_step_events(mod: ModuleFacts, sc: Scope) -> list[Event]:
    out = []
    for e in sc.events:
        if e.attr != "step" or not isinstance(e.node, ast.Call):
            continue
        if is_scaler(mod, e.recv) and e.node.args:
            out.append(e)
        elif is_optimizer(mod, e.recv):
            out.append(e)
    return out


def sched_step_events(mod: ModuleFacts, sc: Scope) -> list[Event]:
    return [
        e
        for e in sc.events
        if e.attr == "step" and is_scheduler(mod, e.recv) and not is_optimizer(mod, e.recv)
    ]


def zero_grad_events(sc: Scope) -> list[Event]:
    return [
        e
        for e in sc.events
        if e.attr == "zero_grad" or (e.attr in ("zero_", "detach_") and e.recv.endswith(".grad"))
    ]


def in_loop(e: Event, lid: int) -> bool:
    return lid in e.loops


def loop_events(sc: Scope, lid: int) -> list[Event]:
    return [e for e in sc.events if lid in e.loops]


def training_loops(mod: ModuleFacts, sc: Scope) -> Iterator[tuple[int, list[Event]]]:
    """Innermost loops that run a backward pass, with their events."""
    seen = set()
    for b in backward_events(sc):
        if not b.loops:
            continue
        lid = b.loops[-1]
        if lid in seen:
            continue
        seen.add(lid)
        yield lid, loop_events(sc, lid)


def is_mod_test(test: ast.expr) -> bool:
    """An ``if`` test that gates on a step counter (``(i + 1) % accum == 0``, ``sync_gradients``)."""
    for n in ast.walk(test):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod):
            return True
        if isinstance(n, ast.Name | ast.Attribute) and re.search(
            r"accum|sync_gradients", dotted(n), re.I
        ):
            return True
    return False


def has_model_calls(mod: ModuleFacts) -> bool:
    """Some call of the file looks like a forward pass (what :func:`model_call_events` keeps):
    a file without one has no model-call events in any scope, so rules about them can skip
    building the scopes (once per file)."""
    hit = mod._cache.get("has_model_calls")
    if hit is None:
        name_t, attr_t = ast.Name, ast.Attribute
        hit = mod._cache["has_model_calls"] = any(
            (type(c.func) is name_t or type(c.func) is attr_t) and mod.is_model(dotted(c.func))
            for c in mod.all_calls
        )
    return hit


def model_call_events(mod: ModuleFacts, sc: Scope) -> list[Event]:
    """Forward passes: ``model(x)``, ``self.net(x)`` (not ``.generate``)."""
    return [
        e
        for e in sc.events
        if isinstance(e.node, ast.Call)
        and isinstance(e.node.func, ast.Name | ast.Attribute)
        and mod.is_model(dotted(e.node.func))
    ]


def str_kw(mod: ModuleFacts, call: ast.Call, name: str) -> object:
    return mod.value_of(kwarg(call, name), None)


def first_arg(call: ast.Call, kw: str | None = None) -> ast.expr | None:
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    return kwarg(call, kw) if kw else None


def is_true(mod: ModuleFacts, node: ast.AST | None) -> bool:
    return mod.value_of(node, None) is True


def dtype_name(node: ast.AST | None) -> str:
    """'float16' / 'bfloat16' / 'float32' for torch.float16, "fp16", "bf16"... or ''."""
    if node is None:
        return ""
    v = const(node, None)
    text = v if isinstance(v, str) else dotted(node)
    text = (text or "").rsplit(".", 1)[-1].lower()
    if text in ("float16", "half", "fp16", "f16"):
        return "float16"
    if text in ("bfloat16", "bf16"):
        return "bfloat16"
    if text in ("float32", "float", "fp32", "f32"):
        return "float32"
    return text


def scope_of_node(mod: ModuleFacts, node: ast.AST) -> list[tuple[Scope, Event]]:
    out = []
    for sc in mod.scopes:
        for e in sc.events:
            if e.node is node:
                out.append((sc, e))
    return out


def assigned_names(mod: ModuleFacts, predicate) -> set[str]:
    return {k for k, vals in mod.assigns.items() if any(predicate(v) for v, _ in vals)}


def enclosing_function(mod: ModuleFacts, line: int) -> tuple[ast.AST | None, str]:
    """The innermost function around ``line`` and its summary key (``f`` / ``Cls.f``)."""
    at = mod._cache.get("func_at")
    if at is None:  # line -> innermost function, built once per file
        at = [None] * (len(mod.lines) + 2)
        fns = sorted(mod.nodes(ast.FunctionDef, ast.AsyncFunctionDef), key=lambda f: f.lineno)
        for f in fns:  # outer functions first: inner ones overwrite their lines
            hi = min(f.end_lineno or f.lineno, len(at) - 1)
            at[f.lineno : hi + 1] = [f] * (hi - f.lineno + 1)
        mod._cache["func_at"] = at
    best = at[line] if 0 <= line < len(at) else None
    if best is None:
        return None, ""
    cls = getattr(best, "_lc_class", "")
    return best, f"{cls}.{best.name}" if cls else best.name


def scoped_bindings(mod: ModuleFacts, vals: list, line: int, name: str = "") -> list:
    """The bindings of a name that a use at ``line`` can see: those in the same function when
    it has any (``out`` in ``forward`` is not ``out`` in ``train``), else all of them."""
    if not vals or not line:
        return vals
    f, _key = enclosing_function(mod, line)
    if f is None:
        return [(v, st) for v, st in vals if enclosing_function(mod, st.lineno)[0] is None] or vals
    lo, hi = f.lineno, f.end_lineno or f.lineno  # type: ignore[attr-defined]
    inside = [(v, st) for v, st in vals if lo <= st.lineno <= hi]
    a = f.args  # type: ignore[attr-defined]
    if name and name in {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}:
        return inside  # a parameter: bindings in other functions are other variables
    return inside or vals


def param_values(mod: ModuleFacts, name: str, line: int) -> set[tuple[str, str]]:
    """(ref, caller path) for what callers pass where ``name`` is a parameter: ``model`` of
    the function using it, or ``self.model`` bound in ``__init__`` from parameter ``model``."""
    prog = mod.program
    if "." not in name:
        f, key = enclosing_function(mod, line)
        if f is None:
            return set()
        a = f.args  # type: ignore[attr-defined]
        if name not in [x.arg for x in [*a.posonlyargs, *a.args]]:
            return set()
        lo, hi = f.lineno, f.end_lineno or f.lineno  # type: ignore[attr-defined]
        if any(lo <= st.lineno <= hi for _v, st in mod.assigns.get(name, [])):
            return set()  # rebound inside the function
        return prog.param_refs(mod.path, key, name)
    if not name.startswith("self."):
        return set()
    vals = mod.assigns.get(name, [])
    if len(vals) != 1:
        return set()
    v, st = vals[0]
    while (
        isinstance(v, ast.Call)
        and isinstance(v.func, ast.Attribute)
        and v.func.attr in ("to", "cuda")
    ):
        v = v.func.value  # `self.model = model.to(device)`
    if not isinstance(v, ast.Name):
        return set()
    _fn, key = enclosing_function(mod, st.lineno)
    if not key.endswith(".__init__"):
        return set()
    return prog.param_refs(mod.path, key, v.id)


def tuple_bindings(mod: ModuleFacts) -> dict[str, list[tuple[ast.Call, int]]]:
    """name -> (call, position) for each ``a, name = call(...)`` statement in the file."""
    out = mod._cache.get("tuple_bindings")
    if out is None:
        out = {}
        for st in mod.nodes(ast.Assign):
            t = st.targets[0]
            if isinstance(t, ast.Tuple) and isinstance(st.value, ast.Call):
                for i, el in enumerate(t.elts):
                    if isinstance(el, ast.Name):
                        out.setdefault(el.id, []).append((st.value, i))
        mod._cache["tuple_bindings"] = out
    return out
