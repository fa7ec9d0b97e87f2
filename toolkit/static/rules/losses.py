"""LC3xx: loss functions fed the wrong thing."""

from __future__ import annotations

import ast
import re

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, kwarg, strip_moves
from toolkit.static.rules._common import (
    backward_events,
    enclosing_function,
    param_values,
    scoped_bindings,
)

TORCH = ("pytorch",)

FUNCTIONAL = {
    "cross_entropy": "CrossEntropyLoss",
    "nll_loss": "NLLLoss",
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
}


REGRESSION_LOSSES = {
    "mse_loss": "MSELoss",
    "smooth_l1_loss": "SmoothL1Loss",
    "huber_loss": "HuberLoss",
    "l1_loss": "L1Loss",
    "kl_div": "KLDivLoss",
}


LOSS_NAME_RE = re.compile(r"loss|crit|objective", re.I)


def loss_kind_of(mod: ModuleFacts, v: ast.AST | None) -> str:
    """The loss a value is: ``nn.CrossEntropyLoss(...)``, ``partial(F.cross_entropy, ...)``,
    ``F.cross_entropy`` itself, or what a checked helper returns (``make_loss(cfg)``)."""
    if isinstance(v, ast.Attribute | ast.Name):
        last = mod.resolve(v).rsplit(".", 1)[-1]
        return FUNCTIONAL.get(last, "")
    if not isinstance(v, ast.Call) or isinstance(v.func, ast.Call):
        return ""
    q = mod.resolve(v.func)
    last = q.rsplit(".", 1)[-1]
    if last in FUNCTIONAL.values():
        return last
    if last == "partial" and v.args:
        return loss_kind_of(mod, v.args[0])
    if mod.program is not None and q:
        fs = mod.program.function(q, path=mod.path)
        if fs is not None:
            return fs.returns_loss
    return ""


def _loss_candidates(mod: ModuleFacts, functional: dict[str, str], lossy: set[str]):
    """(resolved callee, call) in source order for the calls ``loss_calls`` may keep: a
    functional loss, a name holding a loss, a callable named like one, ``Loss()(x, y)``
    (resolved callee "" for the last). Picked from the per-file index of callees by their
    last name, so the other calls are never looked at one by one."""
    lossy_last = {n.rsplit(".", 1)[-1] for n in lossy}
    # the only other keys whose calls can qualify: `Loss()(x, y)` ("Loss()") and a name
    # imported under another name (`from m import cross_entropy as ce`: key "cross_entropy")
    aliased = {o.rsplit(".", 1)[-1] for a, o in mod.imports.items() if o.rsplit(".", 1)[-1] != a}
    out = []
    for k, hits in mod._last_index().items():
        if not k or k in functional or k in lossy_last or LOSS_NAME_RE.search(k):
            out.extend(hits)
            continue
        if not k.endswith("()") and k not in aliased:
            continue
        for h in hits:
            f = h[2].func
            if type(f) is ast.Call or (
                type(f) is ast.Name and f.id != k and (f.id in lossy or LOSS_NAME_RE.search(f.id))
            ):
                out.append(h)
    out.sort(key=lambda h: h[0])
    return [("" if type(c.func) is ast.Call else q, c) for _i, q, c in out]


def loss_calls(mod: ModuleFacts, extra: dict[str, str] | None = None):
    """(call, loss class name, input expr, target expr) for every loss application
    (classification losses; ``extra`` adds more functional name -> class pairs)."""
    key = "loss_calls" + ("+" if extra else "")
    if key in mod._cache:
        yield from mod._cache[key]
        return
    if not mod.mentions("loss", "Loss", "entropy", "kl_div", "crit", "objective"):
        mod._cache[key] = []  # no loss callable or function is spelled anywhere in the file
        return
    functional = {**FUNCTIONAL, **(extra or {})}
    out = []
    lossy = {k for k, v in mod.kinds.items() if any(r.startswith("loss_fn:") for r in v)}
    for q, c in _loss_candidates(mod, functional, lossy):
        last = q.rsplit(".", 1)[-1]
        passed = ""
        if (
            last not in functional
            and not isinstance(c.func, ast.Call)
            and (not lossy or dotted(c.func) not in lossy)
        ):
            if not isinstance(c.func, ast.Name | ast.Attribute) or not LOSS_NAME_RE.search(
                c.func.id if isinstance(c.func, ast.Name) else c.func.attr
            ):
                continue  # only callables named like a loss (loss_fn, criterion) are followed
            bound = scoped_bindings(
                mod, mod.assigns.get(dotted(c.func), []), c.lineno, dotted(c.func)
            )
            if len(bound) == 1:  # `loss_fn = partial(F.cross_entropy, ...)` / `= make_loss(cfg)`
                passed = loss_kind_of(mod, bound[0][0])
            elif mod.program is not None and not bound:
                passed = _param_loss(mod, dotted(c.func), c.lineno)  # handed in by the caller
            if passed not in functional.values():
                continue
        kind = None
        if last in functional and (
            q.startswith("torch.") or q.startswith("F.") or "functional" in q
        ):
            kind = functional[last]
        elif isinstance(c.func, ast.Call):  # nn.CrossEntropyLoss()(x, y)
            inner = mod.resolve(c.func.func).rsplit(".", 1)[-1]
            if inner in functional.values():
                kind = inner
        elif passed:
            kind = passed
        else:
            name = dotted(c.func)
            kinds = sorted(
                r.split(":", 1)[1] for r in mod.kinds.get(name, ()) if r.startswith("loss_fn:")
            )
            if len(kinds) == 1:
                kind = kinds[0]
            elif kinds:  # the name holds different losses in different places: the one here
                bound = scoped_bindings(mod, mod.assigns.get(name, []), c.lineno, name)
                kind = (loss_kind_of(mod, bound[0][0]) if len(bound) == 1 else "") or None
        if kind is None:
            continue
        inp = c.args[0] if c.args else kwarg(c, "input")
        tgt = c.args[1] if len(c.args) > 1 else kwarg(c, "target")
        out.append((c, kind, inp, tgt))
    mod._cache[key] = out
    yield from out


def provenance(mod: ModuleFacts, expr: ast.AST | None, depth: int = 0) -> set[str]:
    """'softmax' / 'log_softmax' / 'sigmoid' / 'logits' for what produced ``expr``."""
    out: set[str] = set()
    if expr is None or depth > 3:
        return out
    if isinstance(expr, ast.Call):
        q = mod.resolve(expr.func)
        last = q.rsplit(".", 1)[-1]
        head = _model_head(mod, dotted(expr.func), depth, expr.lineno)
        if head:
            out.add(head)
            return out
        if last in ("softmax", "log_softmax", "sigmoid"):
            out.add(last)
        elif last == "Sequential" and (h := seq_head(mod, expr)):
            out.add(h)  # `return nn.Sequential(*layers)` ending with nn.Softmax
        elif (
            mod.program is not None
            and q
            and not isinstance(expr.func, ast.Call)
            and (fs := mod.program.function(q, exclude_path=mod.path))
        ):
            if fs.returns:
                out.add(fs.returns)  # a helper in another checked file
        elif isinstance(expr.func, ast.Attribute | ast.Name) and any(
            isinstance(v, ast.Call) and mod.resolve(v.func).rsplit(".", 1)[-1] in SEQ_HEADS
            for v, _ in mod.assigns.get(dotted(expr.func), [])
        ):
            for v, _ in mod.assigns.get(dotted(expr.func), []):
                if isinstance(v, ast.Call):
                    out.add(SEQ_HEADS.get(mod.resolve(v.func).rsplit(".", 1)[-1], ""))
            out.discard("")
        elif isinstance(expr.func, ast.Call) and mod.resolve(expr.func.func).rsplit(".", 1)[-1] in (
            "Softmax",
            "LogSoftmax",
            "Sigmoid",
        ):
            out.add(
                {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}[
                    mod.resolve(expr.func.func).rsplit(".", 1)[-1]
                ]
            )
        elif last in (
            "view",
            "reshape",
            "flatten",
            "squeeze",
            "unsqueeze",
            "float",
            "contiguous",
        ) and isinstance(expr.func, ast.Attribute):
            out |= provenance(mod, expr.func.value, depth + 1)
        elif last in ("clamp", "clip") and isinstance(expr.func, ast.Attribute):
            out |= provenance(mod, expr.func.value, depth + 1)
        return out
    if isinstance(expr, ast.Attribute) and expr.attr == "logits":
        out.add("logits")
        return out
    if isinstance(expr, ast.Subscript):
        return provenance(mod, expr.value, depth + 1)
    if isinstance(expr, ast.Name):
        if re.search(r"logit", expr.id, re.I):
            out.add("logits")
        vals = scoped_bindings(
            mod, mod.assigns.get(expr.id, []), getattr(expr, "lineno", 0), expr.id
        )
        if len(vals) == 1:
            out |= provenance(mod, vals[0][0], depth + 1)
        elif vals:
            provs = [provenance(mod, v, depth + 1) for v, _ in vals]
            out |= set.intersection(*provs) if provs else set()
    return out


SEQ_HEADS = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}


def _class_head(mod: ModuleFacts, cls: ast.ClassDef, depth: int) -> str:
    """'softmax' / 'log_softmax' / 'sigmoid' when every return of ``forward`` ends with it."""
    key = "head:" + cls.name
    if key in mod._cache:
        return mod._cache[key]
    mod._cache[key] = ""
    result = ""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "forward":
            rets = [
                n.value for n in ast.walk(item) if isinstance(n, ast.Return) and n.value is not None
            ]
            heads = [
                provenance(mod, r, depth + 1) & {"softmax", "log_softmax", "sigmoid"} for r in rets
            ]
            if heads and all(len(h) == 1 for h in heads) and len(set.union(*heads)) == 1:
                result = next(iter(heads[0]))
    mod._cache[key] = result
    return result


def _model_head(mod: ModuleFacts, callee: str, depth: int, line: int = 0) -> str:
    """What the model called as ``callee(...)`` ends with (its class's forward, or a Sequential)."""
    if not callee or depth > 3:
        return ""
    for v, _ in mod.assigns.get(callee, []):
        if not isinstance(v, ast.Call):
            continue
        inner = v
        inner = strip_moves(inner)
        last = mod.resolve(inner.func).rsplit(".", 1)[-1]
        if last in mod.module_classes:
            return _class_head(mod, mod.module_classes[last], depth)
        if mod.program is not None and not isinstance(inner.func, ast.Call):
            cs = mod.program.cls(mod.resolve(inner.func), exclude_path=mod.path)
            if cs is not None:  # the class lives in another checked file
                return cs.forward_head or mod.program.ref_head(cs.forward_ref, cs.path)
        if last == "Sequential":
            return seq_head(mod, inner)
    if mod.program is not None:
        return _param_head(mod, callee, line) if line else ""
    return ""


def seq_head(mod: ModuleFacts, call: ast.Call) -> str:
    """The head a ``Sequential(...)`` ends with: its last argument, or for
    ``Sequential(*layers)`` the last layer appended to (or listed in) ``layers``."""
    if not call.args:
        return ""
    last = call.args[-1]
    if isinstance(last, ast.Starred) and isinstance(last.value, ast.Name):
        name = last.value.id
        appended = [
            c
            for c in mod.calls_attr("append")
            if dotted(c.func.value) == name and c.args and c.lineno < call.lineno  # type: ignore[attr-defined]
        ]
        if appended:
            last = max(appended, key=lambda c: c.lineno).args[0]
        else:
            vals = mod.assigns.get(name, [])
            if len(vals) == 1 and isinstance(vals[0][0], ast.List) and vals[0][0].elts:
                last = vals[0][0].elts[-1]
            else:
                return ""
    if isinstance(last, ast.Call) and not isinstance(last.func, ast.Call):
        return SEQ_HEADS.get(mod.resolve(last.func).rsplit(".", 1)[-1], "")
    return ""


def _param_head(mod: ModuleFacts, callee: str, line: int) -> str:
    """The head of a model that reaches ``callee`` through a parameter: every call site
    passes a model whose output ends with the same head."""
    key = f"param_head:{callee}:{enclosing_function(mod, line)[1]}"
    if key in mod._cache:
        return mod._cache[key]
    mod._cache[key] = ""
    vals = param_values(mod, callee, line)
    heads = {mod.program.ref_head(r, p) for r, p in vals}
    if len(heads) == 1 and (h := heads.pop()):
        mod._cache[key] = h
    return mod._cache[key]


def _param_loss(mod: ModuleFacts, callee: str, line: int) -> str:
    """The loss class every caller passes as parameter ``callee`` (``loss_fn(preds, y)``)."""
    kinds = {
        r.split(":", 1)[1] if r.startswith("loss:") else ""
        for r, _ in param_values(mod, callee, line)
    }
    return kinds.pop() if len(kinds) == 1 else ""


@rule(
    "LC301",
    "softmax-before-cross-entropy",
    "error",
    TORCH,
    """Flags ``cross_entropy``/``CrossEntropyLoss`` applied to the output of ``softmax``.
    CrossEntropyLoss applies log-softmax itself; feeding probabilities applies softmax twice,
    compressing the logits into a narrow range: gradients vanish and the model trains slowly to
    a worse optimum while the code runs fine. Pass raw logits.""",
    "pass the raw logits to cross_entropy and drop the softmax",
)
def softmax_ce(mod: ModuleFacts):
    for c, kind, inp, _ in loss_calls(mod):
        if kind == "CrossEntropyLoss" and "softmax" in provenance(mod, inp):
            yield Hit(
                c, f"'{ast.unparse(inp)}' comes from softmax but {kind} applies log-softmax itself"
            )


@rule(
    "LC302",
    "sigmoid-before-bce-with-logits",
    "error",
    TORCH,
    """Flags ``binary_cross_entropy_with_logits``/``BCEWithLogitsLoss`` applied to the output of
    ``sigmoid``. The loss applies sigmoid itself, so probabilities are squashed twice: outputs are
    confined to [0.5, 0.73] and the loss cannot go to zero. Pass raw logits.""",
    "pass the raw logits to BCEWithLogitsLoss and drop the sigmoid",
)
def sigmoid_bce_logits(mod: ModuleFacts):
    for c, kind, inp, _ in loss_calls(mod):
        if kind == "BCEWithLogitsLoss" and "sigmoid" in provenance(mod, inp):
            yield Hit(
                c, f"'{ast.unparse(inp)}' comes from sigmoid but {kind} applies sigmoid itself"
            )


@rule(
    "LC303",
    "nll-loss-without-log-softmax",
    "error",
    TORCH,
    """Flags ``nll_loss``/``NLLLoss`` applied to raw logits or to ``softmax`` output. NLLLoss
    expects log-probabilities; on logits or probabilities it just negates one entry, the loss is
    unbounded below and training optimizes the wrong objective. Use ``log_softmax`` before it,
    or ``cross_entropy`` on logits.""",
    "use F.cross_entropy(logits, y), or F.nll_loss(F.log_softmax(logits, dim=-1), y)",
)
def nll_raw(mod: ModuleFacts):
    for c, kind, inp, _ in loss_calls(mod):
        if kind != "NLLLoss":
            continue
        p = provenance(mod, inp)
        if "log_softmax" in p:
            continue
        if "softmax" in p or "logits" in p:
            what = "softmax probabilities" if "softmax" in p else "raw logits"
            yield Hit(
                c, f"NLLLoss gets '{ast.unparse(inp)}', which is {what}, not log-probabilities"
            )


@rule(
    "LC304",
    "bce-on-logits",
    "error",
    TORCH,
    """Flags ``binary_cross_entropy``/``BCELoss`` applied to logits (a ``.logits`` output or a
    variable named ``logits``) or to log-softmax output. BCELoss expects probabilities in [0, 1];
    on logits it raises on CUDA or produces a meaningless loss. Use ``BCEWithLogitsLoss`` on
    logits (it is also numerically stable).""",
    "use F.binary_cross_entropy_with_logits(logits, y)",
)
def bce_logits(mod: ModuleFacts):
    for c, kind, inp, _ in loss_calls(mod):
        if kind == "BCELoss":
            p = provenance(mod, inp)
            if ("logits" in p or "log_softmax" in p) and "sigmoid" not in p and "softmax" not in p:
                yield Hit(
                    c, f"BCELoss gets '{ast.unparse(inp)}', which are logits, not probabilities"
                )


@rule(
    "LC305",
    "backward-on-unreduced-loss",
    "error",
    TORCH,
    """Flags ``backward()`` on a loss computed with ``reduction="none"`` and never reduced. The
    per-element loss is not a scalar, so ``backward()`` raises "grad can be implicitly created
    only for scalar outputs" after the data loading and forward pass have already run. Reduce it
    (``.mean()``, or a masked mean) first.""",
    "reduce the loss before backward: loss.mean().backward() (or a masked/weighted mean)",
)
def unreduced_backward(mod: ModuleFacts):
    if not mod.bw_scopes:
        return
    unreduced_fns = {
        k
        for k, vals in mod.assigns.items()
        if any(
            isinstance(v, ast.Call) and mod.value_of(kwarg(v, "reduction"), None) == "none"
            for v, _ in vals
        )
    }
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            f = b.node.func
            if not isinstance(f, ast.Attribute) or not isinstance(f.value, ast.Name) or b.node.args:
                continue
            vals = mod.assigns.get(f.value.id, [])
            if not vals or len(vals) > 1:
                continue
            v = vals[0][0]
            if isinstance(v, ast.Call) and (
                mod.value_of(kwarg(v, "reduction"), None) == "none"
                or dotted(v.func) in unreduced_fns
            ):
                yield Hit(
                    b.node,
                    f"'{f.value.id}' was computed with reduction='none' and is not a scalar: backward() raises",
                )


@rule(
    "LC306",
    "softmax-implicit-dim",
    "warning",
    TORCH,
    """Flags ``softmax``/``log_softmax``/``nn.Softmax`` without ``dim``. The implicit dimension
    is deprecated and picks dim 0 for 0-, 1- and 3-D inputs, which normalizes across the batch
    instead of the classes: probabilities are wrong while the shapes look right.""",
    "pass dim explicitly, e.g. F.softmax(logits, dim=-1)",
)
def softmax_dim(mod: ModuleFacts):
    if not mod.mentions("oftmax"):  # softmax, log_softmax, Softmax, LogSoftmax
        return
    for q, c in mod.calls_last("softmax", "log_softmax", "Softmax", "LogSoftmax"):
        last = q.rsplit(".", 1)[-1]
        if last in ("softmax", "log_softmax") and (q.startswith("torch.") or "functional" in q):
            if (
                len(c.args) < 2
                and kwarg(c, "dim") is None
                and not any(k.arg is None for k in c.keywords)
            ):
                yield Hit(c, f"'{q}' without dim: the implicit dimension may be the batch")
        elif last in ("Softmax", "LogSoftmax") and q.startswith("torch.nn"):
            if not c.args and kwarg(c, "dim") is None:
                yield Hit(c, f"'{last}()' without dim: the implicit dimension may be the batch")


TARGET_RE = re.compile(r"^(y|labels?|targets?|gts?|ground_truth|y_true|true_labels?)(_\w+)?$", re.I)
PRED_RE = re.compile(r"(logit|output|outputs|pred|preds|scores|out|y_hat|yhat)", re.I)


@rule(
    "LC307",
    "loss-arguments-swapped",
    "warning",
    TORCH,
    """Flags a classification loss called as ``loss(labels, logits)``: PyTorch losses take
    ``(input, target)``. Swapped arguments either raise a dtype/shape error or, with float
    targets, train on the wrong objective.""",
    "call the loss as loss_fn(logits, labels)",
)
def swapped(mod: ModuleFacts):
    for c, kind, inp, tgt in loss_calls(mod):
        if isinstance(inp, ast.Name) and isinstance(tgt, ast.Name | ast.Attribute):
            t = tgt.id if isinstance(tgt, ast.Name) else tgt.attr
            if TARGET_RE.match(inp.id) and PRED_RE.search(t) and not TARGET_RE.match(t):
                yield Hit(c, f"{kind} called with ('{inp.id}', '{t}'): the target comes first")


@rule(
    "LC308",
    "argmax-over-batch-dim",
    "warning",
    TORCH,
    """Flags ``argmax(dim=0)`` / ``torch.max(x, 0)`` on model outputs or logits (batch-first
    tensors). Dimension 0 is the batch: the "prediction" is the index of the best sample per
    class, so accuracy is computed on garbage while the code runs fine. Reduce over the class
    dimension (``dim=-1`` or ``1``).""",
    "reduce over the class dimension: logits.argmax(dim=-1)",
)
def argmax_batch(mod: ModuleFacts):
    for c in mod.calls_attr("argmax", "max"):
        recv = c.func.value  # type: ignore[attr-defined]
        name = dotted(recv)
        dim_node = kwarg(c, "dim")
        target = recv
        if name in ("torch",) and c.args:
            target = c.args[0]
            dim_node = (
                dim_node if dim_node is not None else (c.args[1] if len(c.args) > 1 else None)
            )
        elif c.args:
            dim_node = dim_node if dim_node is not None else c.args[0]
        if dim_node is None or mod.value_of(dim_node, None) != 0:
            continue
        t = dotted(target) if isinstance(target, ast.Name | ast.Attribute) else ""
        if t and PRED_RE.search(t.rsplit(".", 1)[-1]) and not TARGET_RE.match(t.rsplit(".", 1)[-1]):
            yield Hit(c, f"'{ast.unparse(c)}' reduces over dim 0 (the batch) of '{t}'")
