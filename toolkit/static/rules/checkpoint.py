"""LC7xx: checkpointing."""

from __future__ import annotations

import ast
from pathlib import Path

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, kwarg
from toolkit.static.rules._common import scope_of_node

TORCH = ("pytorch",)
from toolkit.static.program import RANK_RE  # noqa: E402


def _torch_calls(mod: ModuleFacts, name: str):
    return [c for c in mod.calls_q(name) if mod.resolve(c.func) == f"torch.{name}"]


def _saves_nearby(mod: ModuleFacts) -> bool:
    """This file, or a checked file in the same folder, calls ``torch.save``."""
    if _torch_calls(mod, "save"):
        return True
    if mod.program is None:
        return False
    return str(Path(mod.path).parent) in mod.program.save_folders


@rule(
    "LC701",
    "torch-load-without-weights-only",
    "warning",
    TORCH,
    """Flags ``torch.load`` without an explicit ``weights_only`` when the project may run on
    PyTorch older than 2.6, where the default unpickles arbitrary objects (code execution from an
    untrusted checkpoint). Retired where the project's pins (or, with no pin, the installed
    torch) guarantee 2.6 or newer: the default is then ``weights_only=True`` and the hazard is
    gone. Not flagged where the file, or a checked file in its folder, writes checkpoints with
    ``torch.save``: the program reads back files it made itself.""",
    "pass weights_only=True when the file holds only tensors/state_dicts (weights_only=False only for trusted files that pickle other objects), or require torch>=2.6",
)
def load_weights_only(mod: ModuleFacts):
    pin = mod.env.get("torch")
    if pin is not None and pin.at_least((2, 6)):
        return
    why = f" ({pin.source})" if pin is not None else ""
    if _saves_nearby(mod):
        return
    for c in _torch_calls(mod, "load"):
        if kwarg(c, "weights_only") is None and not any(k.arg is None for k in c.keywords):
            yield Hit(
                c,
                f"torch.load without weights_only on a torch that may be older than 2.6{why}: the default unpickles arbitrary objects",
            )


@rule(
    "LC702",
    "torch-load-without-map-location",
    "info",
    TORCH,
    """Flags ``torch.load`` without ``map_location``. Tensors are restored to the device they
    were saved from: a checkpoint written on ``cuda:3`` fails on a CPU-only machine and lands
    every rank on the same GPU under DDP.""",
    "pass map_location='cpu' (or the local device)",
)
def load_map_location(mod: ModuleFacts):
    for c in _torch_calls(mod, "load"):
        if (
            kwarg(c, "map_location") is None
            and len(c.args) < 2
            and not any(k.arg is None for k in c.keywords)
        ):
            yield Hit(c, "torch.load without map_location")


def _distributed(mod: ModuleFacts) -> bool:
    return bool(mod.names_with("ddp") or mod.calls_q("init_process_group"))


@rule(
    "LC703",
    "ddp-wrapped-state-dict-saved",
    "warning",
    ("pytorch", "ddp"),
    """Flags ``torch.save(model.state_dict())`` where ``model`` is the DDP/DataParallel wrapper.
    Every key gets a ``module.`` prefix, so loading into a plain model fails (or, with
    ``strict=False``, silently loads nothing).""",
    "save model.module.state_dict() (the unwrapped model)",
)
def ddp_prefix(mod: ModuleFacts):
    for c in _torch_calls(mod, "save"):
        if not c.args:
            continue
        obj = c.args[0]
        for n in ast.walk(obj):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr == "state_dict"
            ):
                recv = dotted(n.func.value)
                if mod.kinds.get(recv, set()) & {"ddp", "dp"}:
                    yield Hit(
                        c, f"'{recv}' is the DDP wrapper: saved keys carry a 'module.' prefix"
                    )
                    break


@rule(
    "LC704",
    "checkpoint-saved-on-every-rank",
    "warning",
    ("pytorch", "ddp"),
    """Flags ``torch.save`` in a distributed script that is not under a rank check (``if rank ==
    0``, ``is_main_process``). Every rank writes the same file at once: wasted I/O, and
    concurrent writes can corrupt the checkpoint on shared filesystems.""",
    "guard the save with `if dist.get_rank() == 0:` (then dist.barrier())",
)
def save_every_rank(mod: ModuleFacts):
    if not _distributed(mod):
        return
    for c in _torch_calls(mod, "save"):
        places = scope_of_node(mod, c)
        guarded = False
        for _, e in places:
            if any(RANK_RE.search(ast.unparse(t)) for t in e.ifs):
                guarded = True
        fn_guard = any(sc.node is not None and RANK_RE.search(sc.name) for sc, _ in places)
        if not fn_guard and mod.program is not None:
            fn_guard = any(
                sc.node is not None
                and mod.program.all_callers(mod.path, sc.name, lambda s: s.rank_guarded)
                for sc, _ in places
            )
        if not guarded and not fn_guard:
            yield Hit(c, "torch.save runs on every rank")


@rule(
    "LC705",
    "whole-model-pickled",
    "info",
    TORCH,
    """Flags ``torch.save(model)`` of a whole module object. The pickle references the class by
    import path, so renaming or moving code breaks loading, and loading needs
    ``weights_only=False``.""",
    "save model.state_dict() and rebuild the model before load_state_dict",
)
def whole_model(mod: ModuleFacts):
    for c in _torch_calls(mod, "save"):
        if (
            c.args
            and isinstance(c.args[0], ast.Name | ast.Attribute)
            and mod.is_model(dotted(c.args[0]))
        ):
            yield Hit(c, f"torch.save pickles the whole module '{dotted(c.args[0])}'")


@rule(
    "LC706",
    "load-state-dict-strict-false-unchecked",
    "info",
    TORCH,
    """Flags ``model.load_state_dict(..., strict=False)`` whose return value is ignored. Missing
    and unexpected keys are then silent: a prefix mismatch loads nothing and the model trains
    or evaluates from random weights.""",
    "check the result: missing, unexpected = model.load_state_dict(sd, strict=False); assert not missing",
)
def strict_false(mod: ModuleFacts):
    for node in mod.nodes(ast.Expr):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            c = node.value
            if (
                isinstance(c.func, ast.Attribute)
                and c.func.attr == "load_state_dict"
                and mod.value_of(kwarg(c, "strict"), None) is False
            ):
                yield Hit(
                    node, f"'{ast.unparse(c.func)}(strict=False)' ignores missing/unexpected keys"
                )
