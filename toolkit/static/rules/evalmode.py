"""LC2xx: train/eval mode toggling and no_grad/inference_mode in evaluation."""

from __future__ import annotations

import ast
import re

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, const, dotted, exclusive, strip_moves
from toolkit.static.rules._common import backward_events, has_model_calls, model_call_events

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
    for q, c in mod.calls_last(*OPTIMIZER_NAMES, "Trainer", "SFTTrainer", "prepare"):
        last = q.rsplit(".", 1)[-1]
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
                            via = f"in {ev.via}(), " if ev.via else ""
                            yield Hit(
                                sc.loops.get(lid, ev.node),  # the loop that needs train()
                                f"'{ev.recv}.eval()' ({via}line {ev.line}) runs inside this training loop and '{ev.recv}.train()' is never called again in it",
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


def _mode_free(mod: ModuleFacts, text: str) -> bool:
    """The model ``text`` is built from a known class (here or in another checked file) or a
    Sequential with no layer that train()/eval() changes."""
    from toolkit.static.program import mode_dependent

    vals = mod.assigns.get(text, [])
    if not vals:
        return False
    for v, _ in vals:
        inner = strip_moves(v, ("to", "cuda", "float", "double"))
        if not isinstance(inner, ast.Call) or isinstance(inner.func, ast.Call):
            return False
        q = mod.resolve(inner.func)
        last = q.rsplit(".", 1)[-1]
        if last in mod.module_classes:
            if mode_dependent(mod, mod.module_classes[last]):
                return False
        elif last == "Sequential":
            if mode_dependent(mod, inner):
                return False
        elif mod.program is not None and (cs := mod.program.cls(q, exclude_path=mod.path)):
            if cs.mode_dependent:
                return False
        else:
            return False
    return True


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
    file_evals = mod.calls_attr("eval") or any(
        isinstance(c.func, ast.Attribute)
        and c.func.attr == "train"
        and c.args
        and const(c.args[0], None) is False
        for c in mod.calls_attr("train")
    )
    if file_evals and mod.program is None:
        return  # one file on its own: an eval() anywhere may be the caller's
    if not file_evals:
        yield from _shared_epoch_without_modes(mod)
    if not (mod.calls_q("no_grad", "inference_mode") or mod.imported("torch.no_grad")):
        return
    if not has_model_calls(mod):
        return  # no forward pass anywhere in the file (checked before building scopes)
    trains_anywhere = bool(mod.calls_attr("train"))
    for sc in mod.scopes:
        if _in_pipeline_class(mod, sc):
            continue  # a pipeline (components load in eval mode) or a trainer (owns the modes)
        bws = backward_events(sc)
        evals = _mode_events(mod, sc, "eval") + [
            e for e in sc.events if e.attr == "eval" and e.via and isinstance(e.node, ast.Call)
        ]
        for e in model_call_events(mod, sc):
            if not e.loops or not (e.ctx & {"no_grad", "inference_mode"}):
                continue
            if any(b.loops and b.loops[-1] in e.loops or e.loops[-1] in b.loops for b in bws):
                continue  # the loop that trains (or one inside it): not an evaluation loop
            if any(v.idx < e.idx and not exclusive(v, e) for v in evals):
                continue
            if not bws and any(
                t.attr == "train" and isinstance(t.node, ast.Call) for t in sc.events
            ):
                continue  # deliberately in train mode (e.g. recomputing BatchNorm statistics)
            if file_evals and not bws:
                continue  # an eval() elsewhere in the file may be the one this loop runs after
            if sc.node is not None and mod.program is not None:
                if mod.program.all_callers(mod.path, sc.name, mod.program.eval_before):
                    continue  # every caller switches to eval() first (in any checked file)
            name = e.node.func
            text = dotted(name)
            if _mode_free(mod, text):
                continue  # its layers (no dropout, no batch norm) do not change with eval()
            if not trains_anywhere and any(
                isinstance(v, ast.Call) and "from_pretrained" in mod.resolve(v.func)
                for v, _ in mod.assigns.get(text, [])
            ):
                continue
            where = " after training in the same function" if bws else ""
            bw_loops = {lid for b in bws for lid in b.loops}
            lid = next((x for x in e.loops if x not in bw_loops), e.loops[0])
            yield Hit(
                eval_block(mod, sc, lid, e.node),
                f"'{text}(...)' (line {e.line}) is evaluated{where} but '{text}.eval()' is not called before it: dropout/BatchNorm stay in training mode",
            )
            return


def _shared_epoch_without_modes(mod: ModuleFacts):
    """One function runs both the training and the evaluation pass (backward only under
    ``if training:``) and nothing in the file ever calls ``eval()``/``train()``: the
    evaluation pass runs with dropout on and BatchNorm updating its statistics."""
    if mod.calls_attr("train") or not mod.calls_attr("backward"):
        return
    for sc in mod.bw_scopes:
        if sc.node is None or _in_pipeline_class(mod, sc):
            continue
        bws = backward_events(sc)
        if not bws or not all(b.arms for b in bws):
            continue  # backward runs unconditionally: a training-only function
        keys = {k for b in bws for k in b.arms}
        # a condition whose other arm never runs backward (not the AMP/non-AMP if/else)
        gates = {k for k in keys if (k[0], 1 - k[1]) not in keys}
        if not gates or not all(any(k in gates for k in b.arms) for b in bws):
            continue
        for e in model_call_events(mod, sc):
            if not e.loops or any(k in gates for k in e.arms):
                continue
            text = dotted(e.node.func)
            if _mode_free(mod, text):
                continue
            cond = next(iter(gates))[0]
            yield Hit(
                eval_block(mod, sc, e.loops[0], e.node),
                f"'{text}(...)' (line {e.line}) serves the training and the evaluation pass (backward only when '{cond}') but the model is never switched to eval()/train(): evaluation runs with dropout on and BatchNorm updating its statistics",
            )
            return


GRAD_CTX = ("no_grad", "inference_mode", "set_grad_enabled", "enable_grad")


def eval_block(mod: ModuleFacts, sc, lid: int, fallback: ast.AST) -> ast.AST:
    """Where an evaluation pass starts (the statement ``model.eval()`` belongs before): the
    loop ``lid`` of scope ``sc``, or the innermost grad-mode ``with`` block around it in the
    loop's function."""
    from toolkit.static.rules._common import enclosing_function

    loop = sc.loops.get(lid)
    if loop is None:
        return fallback
    best = loop
    fn = enclosing_function(mod, loop.lineno)[0]  # a with around the loop is in its function
    for w in ast.walk(fn or mod.tree):
        if (
            isinstance(w, ast.With | ast.AsyncWith)
            and w.lineno <= loop.lineno <= (w.end_lineno or w.lineno)
            and (best is loop or w.lineno > best.lineno)
            and any(
                dotted(getattr(i.context_expr, "func", i.context_expr)).endswith(GRAD_CTX)
                for i in w.items
            )
        ):
            best = w
    return best


def _in_pipeline_class(mod: ModuleFacts, sc) -> bool:
    """``sc`` is a method of a class deriving from a ``...Pipeline`` (diffusers'
    ``DiffusionPipeline``, transformers' ``Pipeline``: inference wrappers whose models are
    loaded with ``from_pretrained`` and so are in eval mode) or from a ``...Trainer`` (HF/TRL
    trainers switch modes in ``train()``/``evaluate()``; a no-grad forward inside a training
    step, e.g. reference log-probs, runs in train mode on purpose)."""
    if not sc.cls:
        return False
    return any(
        c.name == sc.cls and any(dotted(b).endswith(("Pipeline", "Trainer")) for b in c.bases)
        for c in mod.nodes(ast.ClassDef)
    )


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
        if mod.program is not None and mod.program.all_callers(
            mod.path, sc.name, lambda s: s.no_grad
        ):
            continue  # every caller runs it under no_grad / inference_mode
        for e in model_call_events(mod, sc):
            if e.loops and not (e.ctx & {"no_grad", "inference_mode"}):
                yield Hit(
                    sc.loops.get(e.loops[0], e.node),  # the loop to wrap in no_grad
                    f"'{ast.unparse(e.node.func)}(...)' (line {e.line}) runs in evaluation without no_grad/inference_mode: autograd records a graph per batch",
                )
                return


def _from_pretrained(mod: ModuleFacts, v: ast.AST) -> bool:
    """``v`` builds a pretrained model: ``X.from_pretrained(...)`` (``.to()``/``.cuda()`` after
    it allowed) or a call of a checked function that returns one."""
    if not isinstance(v, ast.Call):
        return False
    inner = v
    inner = strip_moves(inner)
    q = mod.resolve(inner.func)
    if q.endswith("from_pretrained"):
        owner = q.rsplit(".", 2)
        return len(owner) >= 2 and not any(
            k in owner[-2] for k in ("Tokenizer", "Config", "Processor")
        )
    if mod.program is not None and q and not isinstance(inner.func, ast.Call):
        fs = mod.program.function(q, path=mod.path)
        return fs is not None and fs.returns_pretrained
    return False


WRAPS = ("get_peft_model", "prepare_model_for_kbit_training", "PeftModel", "compile", "prepare")


def pretrained_names(mod: ModuleFacts) -> set[str]:
    """Names bound to a pretrained model, and to wrappers of one (peft, compile, DDP, .to())."""
    pre: set[str] = set()
    if mod.program is not None:  # `tok, model = load_model(...)`: a checked helper's tuple
        for st in mod.nodes(ast.Assign):
            t, v = st.targets[0], st.value
            if isinstance(t, ast.Tuple) and isinstance(v, ast.Call):
                fs = mod.program.function(mod.resolve(v.func), path=mod.path)
                if fs is not None and fs.returns_pretrained and 0 <= fs.pretrained_at < len(t.elts):
                    name = dotted(t.elts[fs.pretrained_at])
                    if name:
                        pre.add(name)
    for _ in range(3):
        for name, vals in mod.assigns.items():
            if name in pre:
                continue
            for v, _st in vals:
                if _from_pretrained(mod, v):
                    pre.add(name)
                elif isinstance(v, ast.Call) and any(
                    dotted(a) in pre for a in [*v.args, getattr(v.func, "value", None)] if a
                ):
                    last = mod.resolve(v.func).rsplit(".", 1)[-1]
                    if last in WRAPS or last in ("to", "cuda", "DDP", "DistributedDataParallel"):
                        pre.add(name)
    return pre


NO_DROPOUT_RE = re.compile(
    r"llama|mistral|mixtral|qwen|gemma|olmo|deepseek|smollm|phi-3|phi-4", re.I
)  # families whose configs default to no dropout (attention_dropout = 0, no hidden dropout)


def _dropout_free_checkpoints(mod: ModuleFacts) -> bool:
    """Every model loaded here is a literal checkpoint of a family without dropout: eval and
    train mode compute the same thing, the missing train() changes nothing."""
    ids = []
    for c in mod.calls_attr("from_pretrained"):
        q = mod.resolve(c.func)
        if any(k in q for k in ("Tokenizer", "Config", "Processor")):
            continue
        mid = mod.value_of(c.args[0], None) if c.args else None
        if not isinstance(mid, str):
            return False  # a checkpoint chosen at run time: could be anything
        ids.append(mid)
    return bool(ids) and all(NO_DROPOUT_RE.search(m) for m in ids)


def _handed_pretrained(mod: ModuleFacts) -> set[str]:
    """``self.model`` set in ``__init__`` from a parameter that every caller fills with a
    ``from_pretrained`` model (directly, or as an element of a loader helper's tuple)."""
    from toolkit.static.rules.training import _resolved_refs

    out = set()
    for name, vals in mod.assigns.items():
        if not name.startswith("self.") or len(vals) != 1 or not mod.is_model(name):
            continue
        refs = _resolved_refs(mod, name, vals[0][1].lineno)
        if refs and all(
            r.startswith("func:")
            and r.endswith(".from_pretrained")
            and not any(k in r for k in ("Tokenizer", "Config", "Processor"))
            for r in refs
        ):
            out.add(name)
    return out


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
    if not mod.calls_attr("backward") or (
        not mod.spells("from_pretrained")
        and not (mod.program is not None and mod.program.any_pretrained)
    ):
        return
    pre = {n for n in pretrained_names(mod) if mod.is_model(n) or "model" in mod.kinds.get(n, ())}
    if mod.program is not None:
        pre |= _handed_pretrained(mod)
    if not pre or _dropout_free_checkpoints(mod):
        return
    submodules = all(n.startswith("self.") for n in pre)  # pretrained parts of a wrapper Module
    plain_classes = {  # classes here that are not nn.Modules: their .train() is a training run
        n.name for n in mod.nodes(ast.ClassDef) if n.name not in mod.module_classes
    }
    for c in mod.calls_attr("train"):
        recv = dotted(c.func.value)  # type: ignore[attr-defined]
        v = c.func.value  # type: ignore[attr-defined]
        if isinstance(v, ast.Call) and dotted(v.func) in plain_classes:
            continue  # `NerTrainer(cfg, model, loader).train()`
        if recv in pre or recv not in mod.assigns or not mod.is_model(recv) or submodules:
            return  # switched to train mode (train() recurses into the wrapped pretrained parts)
    for sc in mod.bw_scopes:
        if any(e.attr == "train" and e.via for e in sc.events):
            return  # a helper in another file switches it
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            if b.loops:
                name = sorted(pre)[0]
                yield Hit(
                    sc.loops.get(b.loops[0], b.node),  # the training loop train() belongs before
                    f"'{name}' comes from from_pretrained, which returns it in eval mode, and '{name}.train()' is never called before this training loop: dropout is off during fine-tuning",
                )
                return
