"""LC4xx: mixed precision."""

from __future__ import annotations

import ast

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, kwarg
from toolkit.static.rules._common import backward_events, dtype_name, is_scaler, is_true

AMP = ("pytorch", "amp")


def _autocast_calls(mod: ModuleFacts):
    out = []
    if not mod.mentions("autocast"):
        return out
    for q, c in mod.calls_last("autocast"):
        if not (q.startswith("torch") or q == "autocast"):
            continue
        if mod.value_of(kwarg(c, "enabled"), True) is False:
            continue
        dt = dtype_name(kwarg(c, "dtype"))
        if not dt and len(c.args) > 1:
            dt = dtype_name(c.args[1])
        if not dt:
            if q.startswith("torch.cuda.amp"):
                dt = "float16"
            elif q.startswith("torch.cpu.amp"):
                dt = "bfloat16"
            else:
                dev = mod.value_of(kwarg(c, "device_type"), None)
                if dev is None and c.args:
                    dev = mod.value_of(c.args[0], None)
                dt = "float16" if dev == "cuda" else ("bfloat16" if dev == "cpu" else "")
        out.append((c, q, dt))
    return out


def _uses_scaler(mod: ModuleFacts) -> bool:
    """A GradScaler is made here, or in a checked file this one imports (a wrapper such as
    ``AmpStepper`` that owns the scaler)."""
    if mod.calls_q("GradScaler", "ShardedGradScaler") or mod.names_with("scaler"):
        return True
    return mod.program is not None and any(m.uses_scaler for m in mod.program.imported_modules(mod))


def _managed(mod: ModuleFacts) -> bool:
    """Precision is handled by a framework (Accelerate, Lightning, DeepSpeed, HF Trainer)."""
    return any(
        mod.imported(p)
        for p in ("accelerate", "lightning", "pytorch_lightning", "deepspeed", "fabric")
    )


@rule(
    "LC401",
    "fp16-autocast-without-gradscaler",
    "error",
    AMP,
    """Flags training under float16 autocast (``torch.autocast("cuda")`` defaults to float16,
    as does ``torch.cuda.amp.autocast``) when the file never creates a ``GradScaler``. Small
    float16 gradients underflow to zero, so layers silently stop learning. Use a GradScaler with
    float16, or autocast to bfloat16 (no scaler needed).""",
    "create scaler = torch.amp.GradScaler('cuda') and use scaler.scale(loss).backward(); scaler.step(opt); scaler.update(), or use dtype=torch.bfloat16",
)
def fp16_no_scaler(mod: ModuleFacts):
    if _uses_scaler(mod) or _managed(mod) or not any(backward_events(sc) for sc in mod.bw_scopes):
        return
    fp16 = {id(c): q for c, q, dt in _autocast_calls(mod) if dt == "float16"}
    if not fp16:
        return
    done = set()
    for sc in mod.bw_scopes:
        loops = {b.loops[-1] for b in backward_events(sc) if b.loops}
        for e in sc.events:
            if (
                id(e.node) in fp16
                and id(e.node) not in done
                and any(lid in e.loops for lid in loops)
            ):
                done.add(id(e.node))
                yield Hit(
                    e.node,
                    f"'{fp16[id(e.node)]}' trains in float16 without a GradScaler: small gradients underflow to zero",
                )


@rule(
    "LC402",
    "pure-fp16-training",
    "error",
    AMP,
    """Flags a model cast to float16 (``.half()``, ``.to(torch.float16)``, ``from_pretrained(...,
    torch_dtype=torch.float16)``) and then trained with an optimizer, without PEFT adapters.
    Weights and optimizer state in float16 lose small updates (lr*grad below float16 resolution
    rounds to zero) and Adam's epsilon underflows; with ``fp16=True`` the GradScaler refuses to
    unscale float16 gradients. Keep float32 master weights and use autocast.""",
    "keep the model in float32 and use torch.autocast (bf16) or AMP with GradScaler; for LLMs load in bfloat16 or use LoRA",
)
def pure_fp16(mod: ModuleFacts):
    if not mod.trains or mod.imported("peft") or _managed(mod):
        return
    has_opt = bool(mod.names_with("optimizer")) or bool(mod.calls_q("Trainer", "SFTTrainer"))
    if not has_opt:
        return
    for sc in mod.bw_scopes:
        bws = [b for b in backward_events(sc) if b.loops]
        for e in sc.events:
            f = e.node.func if isinstance(e.node, ast.Call) else None
            if not isinstance(f, ast.Attribute) or not mod.is_model(dotted(f.value) or ""):
                continue
            if f.attr == "half" or (
                f.attr == "to" and any(dtype_name(a) == "float16" for a in e.node.args)
            ):
                if any(b.idx > e.idx for b in bws) and not e.via:
                    yield Hit(
                        e.node,
                        f"'{ast.unparse(f)}' casts the trained model to float16 before training: updates below float16 resolution vanish",
                    )
    for _q, c in mod.calls_last(endswith="from_pretrained"):
        f = c.func
        if (
            mod.resolve(f).endswith("from_pretrained")
            and _trained_target(mod, c)
            and dtype_name(kwarg(c, "torch_dtype") or kwarg(c, "dtype")) == "float16"
        ):
            owner = mod.resolve(f).rsplit(".", 2)
            if len(owner) >= 2 and "Tokenizer" not in owner[-2] and "Config" not in owner[-2]:
                yield Hit(
                    c,
                    "model loaded with torch_dtype=float16 and trained in full: float16 weights lose small updates",
                )


@rule(
    "LC403",
    "deprecated-amp-api",
    "warning",
    AMP,
    """Flags ``torch.cuda.amp.autocast``, ``torch.cuda.amp.GradScaler`` and
    ``torch.cpu.amp.autocast``: deprecated since PyTorch 2.4 (FutureWarning) in favour of the
    device-generic ``torch.amp`` API, and slated for removal.""",
    "use torch.autocast('cuda', dtype=...) and torch.amp.GradScaler('cuda')",
)
def deprecated_amp(mod: ModuleFacts):
    for q, c in mod.calls_last("autocast", "GradScaler"):
        if q in (
            "torch.cuda.amp.autocast",
            "torch.cuda.amp.GradScaler",
            "torch.cpu.amp.autocast",
            "torch.cuda.amp.autocast_mode.autocast",
        ):
            yield Hit(c, f"'{q}' is deprecated")


@rule(
    "LC404",
    "fp16-and-bf16-both-set",
    "error",
    ("transformers", "accelerate"),
    """Flags ``fp16=True`` together with ``bf16=True`` in ``TrainingArguments`` (or any config
    call). Transformers raises at start-up; other configs pick one silently, so the precision
    you think you trained with is not the one used. Choose one: bf16 on Ampere or newer.""",
    "set exactly one of bf16=True (Ampere+) or fp16=True",
)
def fp16_bf16(mod: ModuleFacts):
    for c in mod.calls_with_kw("fp16"):
        if is_true(mod, kwarg(c, "fp16")) and is_true(mod, kwarg(c, "bf16")):
            yield Hit(c, f"'{dotted(c.func)}' sets both fp16=True and bf16=True")


@rule(
    "LC405",
    "gradscaler-update-missing",
    "error",
    AMP,
    """Flags ``scaler.step(optimizer)`` with no ``scaler.update()`` anywhere in the file. The
    loss scale never adapts: after one overflow every following step is skipped, or the scale
    never grows back, and training stalls with no error.""",
    "call scaler.update() after every scaler.step(optimizer)",
)
def scaler_update_missing(mod: ModuleFacts):
    if any(
        isinstance(c.func, ast.Attribute) and is_scaler(mod, dotted(c.func.value))
        for c in mod.calls_attr("update")
    ):
        return
    for c in mod.calls_attr("step"):
        recv = dotted(c.func.value)
        if c.args and is_scaler(mod, recv):
            yield Hit(
                c,
                f"'{recv}.step()' is never followed by '{recv}.update()': the loss scale never adapts",
            )


@rule(
    "LC406",
    "backward-inside-autocast",
    "warning",
    AMP,
    """Flags ``backward()`` inside an ``autocast`` block. Autocast should wrap only the forward
    pass and loss; backward ops already run in the dtype autocast chose for the forward, and
    running backward under autocast is documented as unsupported.""",
    "end the autocast block after computing the loss; call backward() outside it",
)
def backward_in_autocast(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            if "autocast" in b.ctx and not b.via:
                yield Hit(b.node, "backward() runs inside the autocast block")


@rule(
    "LC407",
    "gradscaler-with-bf16",
    "info",
    AMP,
    """Flags a ``GradScaler`` in a file whose autocast is bfloat16 only. bfloat16 has the same
    exponent range as float32, so loss scaling is unnecessary overhead (and hides real
    overflow).""",
    "drop the GradScaler when autocasting to bfloat16",
)
def scaler_bf16(mod: ModuleFacts):
    ac = _autocast_calls(mod)
    if not ac or any(dt != "bfloat16" for _, _, dt in ac):
        return
    for c in mod.calls_q("GradScaler"):
        yield Hit(c, "GradScaler with bfloat16 autocast: loss scaling is not needed")


@rule(
    "LC408",
    "apex-amp",
    "warning",
    AMP,
    """Flags ``from apex import amp``: NVIDIA Apex AMP is deprecated and unmaintained; native
    ``torch.autocast`` + ``torch.amp.GradScaler`` replaces it with the same speed.""",
    "use torch.autocast and torch.amp.GradScaler",
)
def apex(mod: ModuleFacts):
    for node in mod.nodes(ast.ImportFrom, ast.Import):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "apex"
            and any(a.name == "amp" for a in node.names)
        ):
            yield Hit(node, "apex.amp is deprecated")
        elif isinstance(node, ast.Import) and any(a.name == "apex.amp" for a in node.names):
            yield Hit(node, "apex.amp is deprecated")


def _trained_target(mod: ModuleFacts, call: ast.Call) -> bool:
    """The name bound to ``call`` is optimized (``opt(name.parameters())``, ``Trainer(model=name)``)."""
    from toolkit.static.rules.evalmode import _optimized_names

    names = _optimized_names(mod) or set()
    for k, vals in mod.assigns.items():
        if any(v is call for v, _ in vals):
            return k in names
    return False
