"""LC2xx: train/eval mode toggling and no_grad/inference_mode in evaluation."""

from __future__ import annotations

import ast
import re

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, const, dotted
from toolkit.static.rules._common import backward_events, model_call_events

TORCH = ("pytorch",)


def _mode_events(mod: ModuleFacts, sc, mode: str):
    out = []
    for e in sc.events:
        if not isinstance(e.node, ast.Call) or not mod.is_model(e.recv):
            continue
        if e.attr == "eval" and not e.node.args:
            out.append(e) if mode == "eval" else None
        elif e.attr == "train":
            arg = const(e.node.args[0], None) if e.node.args else True
            if (arg is False) == (mode == "eval"):
                out.append(e)
    return out


AUX_RE = re.compile(
    r"ema|teacher|target|frozen|ref|reference|backbone|encoder_frozen|critic_old|old|average|swa",
    re.I,
)


def _optimized_names(mod: ModuleFacts) -> set[str] | None:
    """Names whose parameters feed an optimizer (``AdamW(model.parameters())``); None if unknown."""
    from toolkit.static.engine import OPTIMIZER_NAMES

    out: set[str] = set()
    seen = False
    for c in mod.all_calls:
        last = mod.resolve(c.func).rsplit(".", 1)[-1]
        if last in OPTIMIZER_NAMES or last in ("Trainer", "SFTTrainer", "prepare"):
            seen = True
            for n in ast.walk(c):
                if isinstance(n, ast.Attribute) and n.attr in ("parameters", "named_parameters"):
                    out.add(dotted(n.value))
                elif isinstance(n, ast.keyword) and n.arg == "model":
                    out.add(dotted(n.value))
                elif last == "prepare" and isinstance(n, ast.Name):
                    out.add(n.id)
    return out if seen else None


def _is_trained(mod: ModuleFacts, recv: str, via: str) -> bool:
    if AUX_RE.search(recv.rsplit(".", 1)[-1]):
        return False
    if via:
        return True  # a helper's parameter name: cannot map it back, assume the trained model
    names = _optimized_names(mod)
    if names is None:
        return False
    return recv in names or any(
        n.endswith("." + recv) or recv.endswith("." + n) for n in names if n
    )


@rule(
    "LC201",
    "eval-mode-not-restored",
    "error",
    TORCH,
    """Flags a training loop that switches the model to ``eval()`` (directly or in an evaluation
    helper it calls) and never switches it back with ``train()`` inside the loop. Every step after
    the first evaluation trains with dropout off and BatchNorm statistics frozen, which silently
    changes the result.""",
    "call model.train() at the start of each epoch/step, or at the end of the evaluation helper",
)
def eval_not_restored(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        bws = backward_events(sc)
        if not bws:
            continue
        evals = _mode_events(mod, sc, "eval")
        trains = _mode_events(mod, sc, "train")
        reported = set()
        for b in bws:
            for lid in b.loops:
                for ev in evals:
                    if not _is_trained(mod, ev.recv, ev.via) and not (
                        ev.via and not AUX_RE.search(ev.recv)
                    ):
                        continue
                    if lid in ev.loops and id(ev.node) not in reported:
                        if not any(lid in t.loops for t in trains):
                            reported.add(id(ev.node))
                            via = f" (in {ev.via}())" if ev.via else ""
                            yield Hit(
                                ev.node,
                                f"'{ev.recv}.eval()'{via} runs inside the training loop and '{ev.recv}.train()' is never called again in the loop",
                            )


@rule(
    "LC202",
    "training-in-eval-mode",
    "error",
    TORCH,
    """Flags a model put in ``eval()`` mode before a training loop that runs ``backward()`` with
    no ``train()`` call in between. The whole run trains with dropout disabled and BatchNorm
    using running statistics.""",
    "call model.train() before the training loop",
)
def training_in_eval(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        bws = [b for b in backward_events(sc) if b.loops]
        if not bws:
            continue
        trains = _mode_events(mod, sc, "train")
        for ev in _mode_events(mod, sc, "eval"):
            if ev.loops or not _is_trained(mod, ev.recv, ""):
                continue
            later = [b for b in bws if b.idx > ev.idx]
            if later and not any(t.idx > ev.idx for t in trains):
                yield Hit(
                    ev.node,
                    f"'{ev.recv}.eval()' is set before the training loop and never undone: training runs in eval mode",
                )
                break


@rule(
    "LC203",
    "evaluation-without-eval-mode",
    "warning",
    TORCH,
    """Flags an evaluation loop (model forward under ``no_grad``/``inference_mode``, no backward)
    when nothing in the file ever calls ``model.eval()``. Dropout stays active and BatchNorm
    updates its running statistics on evaluation data, so the metrics are noisy and wrong for
    models with those layers. (Models loaded with ``from_pretrained`` start in eval mode and are
    not flagged.)""",
    "call model.eval() before evaluating (and model.train() afterwards)",
)
def eval_without_eval_mode(mod: ModuleFacts):
    if mod.calls_attr("eval") or any(
        isinstance(c.func, ast.Attribute)
        and c.func.attr == "train"
        and c.args
        and const(c.args[0], None) is False
        for c in mod.calls_attr("train")
    ):
        return
    if not (mod.calls_q("no_grad", "inference_mode") or mod.imported("torch.no_grad")):
        return
    for sc in mod.scopes:
        if backward_events(sc):
            continue
        for e in model_call_events(mod, sc):
            if not e.loops or not (e.ctx & {"no_grad", "inference_mode"}):
                continue
            if any(t.attr == "train" and isinstance(t.node, ast.Call) for t in sc.events):
                continue  # deliberately in train mode (e.g. recomputing BatchNorm statistics)
            name = e.node.func
            from toolkit.static.engine import dotted

            text = dotted(name)
            if any(
                isinstance(v, ast.Call) and "from_pretrained" in mod.resolve(v.func)
                for v, _ in mod.assigns.get(text, [])
            ):
                continue
            yield Hit(
                e.node,
                f"'{text}(...)' is evaluated but '{text}.eval()' is never called: dropout/BatchNorm stay in training mode",
            )
            return


@rule(
    "LC204",
    "evaluation-without-no-grad",
    "warning",
    TORCH,
    """Flags an evaluation function (the model is put in ``eval()`` mode and run in a loop, with
    no backward) whose forward passes are not under ``torch.no_grad()`` or
    ``torch.inference_mode()``. Autograd records a graph for every batch: memory and time are
    wasted, and large eval batches OOM.""",
    "wrap the evaluation loop in `with torch.inference_mode():` (or decorate the function)",
)
def eval_without_no_grad(mod: ModuleFacts):
    if not mod.calls_attr("eval"):
        return
    for sc in mod.scopes:
        if sc.node is None or backward_events(sc):
            continue
        if not _mode_events(mod, sc, "eval"):
            continue
        for e in model_call_events(mod, sc):
            if e.loops and not (e.ctx & {"no_grad", "inference_mode"}):
                yield Hit(
                    e.node,
                    f"'{ast.unparse(e.node.func)}(...)' runs in evaluation without no_grad/inference_mode: autograd records a graph per batch",
                )
                return


@rule(
    "LC205",
    "pretrained-model-never-in-train-mode",
    "warning",
    ("pytorch", "transformers"),
    """Flags a custom training loop (``backward()`` + optimizer step) on a model loaded with
    ``from_pretrained`` when nothing in the file calls ``model.train()``. Transformers returns
    pretrained models in eval mode, so the whole fine-tune runs with dropout disabled: the
    result differs from the recipe and overfits more. (``Trainer`` switches modes itself.)""",
    "call model.train() before the training loop (and after any evaluation)",
)
def pretrained_never_train(mod: ModuleFacts):
    if any(mod.is_model(dotted(c.func.value)) for c in mod.calls_attr("train")):  # type: ignore[attr-defined]
        return
    pre = set()
    for name, vals in mod.assigns.items():
        for v, _ in vals:
            if isinstance(v, ast.Call):
                inner = v
                while (
                    isinstance(inner.func, ast.Attribute)
                    and inner.func.attr in ("to", "cuda")
                    and isinstance(inner.func.value, ast.Call)
                ):
                    inner = inner.func.value
                if mod.resolve(inner.func).endswith("from_pretrained") and "model" in mod.kinds.get(
                    name, ()
                ):
                    pre.add(name)
    if not pre:
        return
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            if b.loops:
                yield Hit(
                    b.node,
                    f"'{sorted(pre)[0]}' comes from from_pretrained (eval mode) and model.train() is never called: dropout is off during fine-tuning",
                )
                return
