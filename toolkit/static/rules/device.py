"""LC6xx: device handling."""

from __future__ import annotations

import ast
import re

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import TENSOR_FACTORIES, ModuleFacts, dotted, kwarg, roles_for_value
from toolkit.static.rules._common import backward_events

TORCH = ("pytorch",)
DEVICE_NAME_RE = re.compile(r"(^|_|\.)device$", re.I)


def device_vars(mod: ModuleFacts) -> set[str]:
    out = set(mod.names_with("device"))
    for k, vals in mod.assigns.items():
        if DEVICE_NAME_RE.search(k):
            for v, _ in vals:
                if isinstance(v, ast.Call | ast.IfExp | ast.Constant | ast.Attribute):
                    out.add(k)
    return out


@rule(
    "LC601",
    "hardcoded-cuda-beside-device",
    "info",
    TORCH,
    """Flags ``.cuda()`` in a file that also defines a device variable (``device =
    torch.device(...)``). The hard-coded call ignores the device choice: the script crashes on
    CPU-only or MPS machines, and under DDP every rank that calls ``.cuda()`` without
    ``set_device`` lands on GPU 0.""",
    "use .to(device) everywhere instead of .cuda()",
)
def cuda_beside_device(mod: ModuleFacts):
    devs = device_vars(mod)
    if not devs:
        return
    for c in mod.calls_attr("cuda"):
        if c.args or c.keywords:
            continue
        recv = dotted(c.func.value)  # type: ignore[attr-defined]
        if recv.startswith("torch") or recv in ("torch.cuda",):
            continue
        yield Hit(
            c, f"'{ast.unparse(c.func)}()' hard-codes CUDA while '{sorted(devs)[0]}' is defined"
        )


@rule(
    "LC602",
    "tensor-created-on-cpu-in-loop",
    "warning",
    TORCH,
    """Flags ``torch.zeros/ones/arange/tensor/...`` created inside a training loop without
    ``device=`` in a script that moves data to a device. The tensor lives on the CPU: mixing it
    with CUDA tensors raises a device mismatch, or forces a host-to-device copy every step.""",
    "create it on the right device: torch.zeros(..., device=x.device)",
)
def cpu_tensor_in_loop(mod: ModuleFacts):
    devs = device_vars(mod)
    if not devs and not mod.calls_attr("cuda"):
        return
    moved: set[int] = set()
    for c in [*mod.calls_by_attr.get("to", ()), *mod.calls_by_attr.get("cuda", ())]:
        if isinstance(c.func.value, ast.Call):
            moved.add(id(c.func.value))
    for sc in mod.bw_scopes:
        bws = backward_events(sc)
        if not bws:
            continue
        loop_ids = {b.loops[-1] for b in bws if b.loops}
        for e in sc.events:
            if not e.loops or e.loops[-1] not in loop_ids or id(e.node) in moved:
                continue
            last = e.q.rsplit(".", 1)[-1]
            if e.q.startswith("torch.") and last in TENSOR_FACTORIES - {
                "zeros_like",
                "ones_like",
                "from_numpy",
                "as_tensor",
            }:
                if (
                    kwarg(e.node, "device") is None
                    and not any(k.arg is None for k in e.node.keywords)
                    and not _index_only(mod, e.node)
                ):
                    yield Hit(
                        e.node, f"'{e.q}(...)' is created on the CPU inside the training loop"
                    )


def _index_only(mod: ModuleFacts, call: ast.Call) -> bool:
    """The tensor is bound to a name that is only iterated or used as an index (nanoGPT's
    ``ix = torch.randint(...)`` picking offsets into a numpy memmap): it belongs on the CPU."""
    names = [k for k, vals in mod.assigns.items() if any(v is call for v, _ in vals)]
    if len(names) != 1 or "." in names[0]:
        return False
    name = names[0]
    uses = 0
    for n in mod.nodes(ast.comprehension, ast.For):
        if isinstance(n.iter, ast.Name) and n.iter.id == name:
            uses += 1
    for n in mod.nodes(ast.Subscript):
        if isinstance(n.slice, ast.Name) and n.slice.id == name:
            uses += 1
    loads = sum(1 for n in mod.nodes(ast.Name) if n.id == name and isinstance(n.ctx, ast.Load))
    return uses > 0 and uses == loads


def _moved_models(mod: ModuleFacts) -> bool:
    for c in [*mod.calls_by_attr.get("to", ()), *mod.calls_by_attr.get("cuda", ())]:
        v = c.func.value
        if isinstance(v, ast.Call) or mod.is_model(dotted(v)):
            return True
    return False


@rule(
    "LC603",
    "model-not-moved-to-device",
    "warning",
    TORCH,
    """Flags a script that moves its batches to a device (``x.to(device)``) while the model it
    builds is never moved (no ``model.to(device)``/``.cuda()``, no ``device_map``, no
    Accelerate/Trainer). The first forward raises a device mismatch after the data pipeline has
    started, or the model silently runs on the CPU.""",
    "call model.to(device) right after building the model",
)
def model_not_moved(mod: ModuleFacts):
    if (
        _moved_models(mod)
        or mod.imported("accelerate")
        or mod.imported("lightning")
        or mod.imported("pytorch_lightning")
    ):
        return
    if mod.calls_q("Trainer", "SFTTrainer", "Seq2SeqTrainer") or mod.any_call("prepare"):
        return
    devs = device_vars(mod)
    batch_moves = [
        c
        for c in mod.calls_attr("to")
        if c.args and dotted(c.args[0]) in devs and not mod.is_model(dotted(c.func.value))  # type: ignore[attr-defined]
    ]
    if not batch_moves:
        return
    for name, vals in mod.assigns.items():
        for v, _ in vals:
            if (
                isinstance(v, ast.Call)
                and "model" in mod.kinds.get(name, ())
                and not mod.resolve(v.func).endswith("from_pretrained")
            ):
                last = mod.resolve(v.func).rsplit(".", 1)[-1]
                if (
                    last in mod.module_classes
                    or mod.resolve(v.func).startswith("torch.nn")
                    or last.startswith("resnet")
                ):
                    yield Hit(
                        v,
                        f"'{name}' is never moved to '{dotted(batch_moves[0].args[0])}' but its inputs are",
                    )
                    return


@rule(
    "LC604",
    "tensor-to-result-discarded",
    "error",
    TORCH,
    """Flags ``x.to(device)`` / ``x.cuda()`` / ``x.half()`` as a bare statement on a tensor (a
    batch from a loader or a tensor built with ``torch.*``). Unlike ``Module.to``, ``Tensor.to``
    is not in-place: it returns a new tensor and ``x`` stays where it was. A batch used as a
    mapping (``model(**batch)``, ``batch["input_ids"]``) is a ``BatchEncoding``, whose ``.to()``
    is in place: not flagged.""",
    "assign the result: x = x.to(device)",
)
def to_discarded(mod: ModuleFacts):
    for node in mod.nodes(ast.Expr):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            f = node.value.func
            if isinstance(f, ast.Attribute) and f.attr in (
                "to",
                "cuda",
                "cpu",
                "half",
                "float",
                "bfloat16",
                "double",
                "long",
                "contiguous",
            ):
                recv = dotted(f.value)
                ks = mod.kinds.get(recv, set())
                if (
                    ks & {"batch", "tensor"}
                    and "model" not in ks
                    and not mod.is_model(recv)
                    and _only_tensors(mod, recv)
                    and not (f.attr == "to" and _used_as_mapping(mod, recv))
                ):
                    yield Hit(
                        node,
                        f"'{recv}.{f.attr}(...)' returns a new tensor that is thrown away; '{recv}' is unchanged",
                    )


@rule(
    "LC605",
    "ddp-cuda-without-set-device",
    "warning",
    ("pytorch", "ddp"),
    """Flags ``.cuda()`` or ``torch.device("cuda")`` without an index in a DDP script that never
    calls ``torch.cuda.set_device(local_rank)``. Every rank puts its model on GPU 0: the other
    GPUs idle, GPU 0 runs out of memory, and NCCL may hang.""",
    "call torch.cuda.set_device(local_rank) early, or use .to(f'cuda:{local_rank}')",
)
def ddp_set_device(mod: ModuleFacts):
    if not (mod.names_with("ddp") or mod.calls_q("init_process_group")):
        return
    if mod.calls_q("set_device") or mod.imported("accelerate"):
        return
    for c in mod.calls_attr("cuda"):
        if not c.args and not c.keywords and not dotted(c.func.value).startswith("torch"):  # type: ignore[attr-defined]
            yield Hit(
                c,
                f"'{ast.unparse(c.func)}()' in a multi-process (torch.distributed) script without torch.cuda.set_device: every process on a node uses GPU 0",
            )
            return
    defaults = {  # `def f(..., device=torch.device("cuda"))`: the caller passes the real one
        id(d)
        for f in mod.nodes(ast.FunctionDef, ast.AsyncFunctionDef)
        for d in [*f.args.defaults, *f.args.kw_defaults]
        if d is not None
    }
    for c in mod.calls_q("torch.device"):
        if id(c) in defaults:
            continue
        if c.args and mod.value_of(c.args[0], None) == "cuda" and len(c.args) == 1:
            yield Hit(
                c,
                "torch.device('cuda') in a multi-process (torch.distributed) script without torch.cuda.set_device: every process on a node uses GPU 0",
            )
            return


def _used_as_mapping(mod: ModuleFacts, name: str) -> bool:
    """``name`` is used as a mapping (``**name``, ``name["key"]``, ``name.items()``): a
    ``BatchEncoding`` from a tokenizer/collator, whose ``.to()`` moves it in place."""
    key = f"mapping:{name}"
    if key not in mod._cache:
        hit = any(k.arg is None and dotted(k.value) == name for k in mod.nodes(ast.keyword))
        hit = hit or any(
            dotted(n.value) == name
            and isinstance(n.slice, ast.Constant)
            and isinstance(n.slice.value, str)
            for n in mod.nodes(ast.Subscript)
        )
        hit = hit or any(
            c.func.attr in ("items", "keys", "values") and dotted(c.func.value) == name  # type: ignore[attr-defined]
            for c in mod.calls_attr("items", "keys", "values")
        )
        mod._cache[key] = hit
    return mod._cache[key]


def _only_tensors(mod: ModuleFacts, name: str) -> bool:
    """Every binding of ``name`` yields a tensor (a loader batch or a torch factory)."""
    for v, st in mod.assigns.get(name, []):
        if isinstance(st, ast.For | ast.AsyncFor):
            if not mod._loaderish(v):
                return False
        elif not (roles_for_value(mod, v) & {"tensor", "batch"}):
            return False
    return True
