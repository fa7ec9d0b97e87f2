"""LC1xx: the training loop (gradients, step order, clipping, accumulation)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, exclusive, kwarg, on_path
from toolkit.static.rules._common import (
    backward_events,
    grad_owner,
    is_mod_test,
    is_optimizer,
    is_scaler,
    is_scheduler,
    loss_expr,
    opt_step_events,
    optimizer_params,
    sched_step_events,
    training_loops,
    tuple_bindings,
    zero_grad_events,
)

TORCH = ("pytorch",)


@rule(
    "LC101",
    "gradients-never-cleared",
    "error",
    TORCH,
    """Flags a training loop that calls ``backward()`` and ``optimizer.step()`` while nothing in the
    file ever clears gradients (no ``zero_grad()``, no ``p.grad = None``). PyTorch accumulates
    ``.grad`` across backward calls, so every step applies the sum of all previous gradients and
    training diverges or silently degrades. Call ``optimizer.zero_grad(set_to_none=True)`` once
    per optimizer step.""",
    "call optimizer.zero_grad(set_to_none=True) at the start of each step (or right after optimizer.step())",
)
def gradients_never_cleared(mod: ModuleFacts):
    if any(zero_grad_events(sc) for sc in mod.bw_scopes) or mod.calls_attr("zero_grad"):
        # cleared somewhere: flag a loop whose scope clears only before the loop starts
        for sc in mod.bw_scopes:
            zs = zero_grad_events(sc)
            if not zs:
                continue
            for lid, _evs in training_loops(mod, sc):
                steps = [e for e in opt_step_events(mod, sc) if lid in e.loops]
                if (
                    steps
                    and not any(lid in z.loops for z in zs)
                    and all(z.idx < steps[0].idx and not z.loops for z in zs)
                ):
                    yield Hit(
                        steps[0].node,
                        f"'{steps[0].text}' runs every iteration but gradients are cleared only once, before the loop ('{zs[0].text}' at line {zs[0].line}): they accumulate across iterations",
                    )
                    break
        return
    for sc in mod.bw_scopes:
        for lid, evs in training_loops(mod, sc):
            if _per_context(evs):
                continue
            steps = [e for e in opt_step_events(mod, sc) if lid in e.loops]
            if steps:
                # reported at the backward that accumulates (where the clearing belongs)
                bws = [b for b in backward_events(sc) if lid in b.loops and b.idx < steps[0].idx]
                at = bws[0] if bws else steps[0]
                what = f"the backward() in {at.via}()" if at.q.startswith("<") else f"'{at.text}'"
                yield Hit(
                    at.node,
                    f"{what} accumulates into .grad every iteration and nothing clears it: '{steps[0].text}' (line {steps[0].line}) applies the sum of all earlier gradients",
                )
                break


def _per_context(evs) -> bool:
    """Backward runs in a distributed-autograd context: each context holds its own gradients."""
    bws = [e for e in evs if e.attr == "backward"]
    return bool(bws) and all(
        "dist_autograd" in e.ctx or "dist_autograd" in e.recv or "distributed.autograd" in e.q
        for e in bws
    )


def _stepped(mod: ModuleFacts, s) -> str:
    """The optimizer a step event updates (``scaler.step(opt)`` -> ``opt``)."""
    if is_scaler(mod, s.recv) and s.node.args:
        return dotted(s.node.args[0])
    return s.recv


def _clears(mod: ModuleFacts, z, s) -> bool:
    """zero_grad event ``z`` clears the gradients that step ``s`` consumes (as far as we can tell)."""
    owner = grad_owner(mod, z)
    if owner is not None:
        params = optimizer_params(mod, _stepped(mod, s))
        return params is None or owner in params
    if z.recv == _stepped(mod, s) or z.attr != "zero_grad":
        return True
    return mod.is_model(z.recv) or not is_optimizer(mod, z.recv)


@rule(
    "LC102",
    "zero-grad-misplaced",
    "error",
    TORCH,
    """Flags ``zero_grad()`` between ``backward()`` and ``optimizer.step()`` (the step sees zero
    gradients and the model never learns), and ``zero_grad()`` that runs on every micro-batch while
    the step only runs every N batches (gradient accumulation is silently undone). Clear gradients
    right before the forward/backward of a new step or right after the step, under the same
    condition as the step.""",
    "move zero_grad() after optimizer.step() (inside the same `if` that gates the step)",
)
def zero_grad_misplaced(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        for lid, evs in training_loops(mod, sc):
            bws = [e for e in evs if e in backward_events(sc)]
            steps = [e for e in opt_step_events(mod, sc) if lid in e.loops]
            zs = [e for e in zero_grad_events(sc) if lid in e.loops]
            if not steps or not zs or not bws:
                continue
            for z in zs:
                mine = [s for s in on_path(z, steps) if _clears(mod, z, s)]
                if not mine:
                    continue
                bws = on_path(z, [e for e in evs if e in backward_events(sc)])
                prev_b = [b for b in bws if b.idx < z.idx]
                next_s = [s for s in mine if s.idx > z.idx]
                if prev_b and next_s:
                    s = next_s[0]
                    if not any(z.idx < b.idx < s.idx for b in bws) and not any(
                        s2.idx < z.idx and s2.idx > prev_b[-1].idx for s2 in steps
                    ):
                        yield Hit(
                            z.node,
                            f"'{z.text}' runs after backward() and before '{s.text}': the step sees zeroed gradients",
                        )
                        continue
                # cyclic order: zero_grad -> step -> backward: the step sees zeroed gradients
                nb = [b for b in bws if b.idx > z.idx]
                ns = [s for s in mine if s.idx > z.idx]
                if (
                    not prev_b
                    and ns
                    and nb
                    and ns[0].idx < nb[0].idx
                    and not any(is_mod_test(t) for t in ns[0].ifs)
                ):
                    yield Hit(
                        z.node,
                        f"'{z.text}' runs before '{ns[0].text}' and backward() only comes after the step: every update uses zeroed gradients",
                    )
                    continue
                gated = [s for s in steps if any(is_mod_test(t) for t in s.ifs)]
                if (
                    gated
                    and len(gated) == len(steps)
                    and not any(is_mod_test(t) for t in z.ifs)
                    and z.ifs == bws[0].ifs
                ):
                    yield Hit(
                        z.node,
                        f"'{z.text}' runs every micro-batch but '{gated[0].text}' only every N batches: accumulated gradients are discarded",
                    )


@rule(
    "LC103",
    "backward-under-no-grad",
    "error",
    TORCH,
    """Flags ``backward()`` inside ``torch.no_grad()``, ``torch.inference_mode()``,
    ``set_grad_enabled(False)`` or a function decorated with them, including through a helper
    called there. No graph is recorded, so backward raises or (with a leaf that requires grad)
    computes nothing useful. Run the forward and backward of training outside the no-grad
    context.""",
    "move the forward pass and loss.backward() out of the no_grad/inference_mode block",
)
def backward_under_no_grad(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            c = b.ctx & {"no_grad", "inference_mode"}
            if c:
                where = f" (via {b.via}())" if b.via else ""
                yield Hit(
                    b.node,
                    f"'{dotted(b.node.func) or 'backward'}()' runs under {sorted(c)[0]}{where}: no graph is recorded",
                )


@rule(
    "LC104",
    "scheduler-before-optimizer-step",
    "warning",
    TORCH,
    """Flags ``scheduler.step()`` called before ``optimizer.step()`` in the same loop. Since
    PyTorch 1.1 the scheduler must step after the optimizer; the other order skips the first
    value of the schedule (and warns at runtime), shifting warm-up and decay by one step or
    epoch.""",
    "call scheduler.step() after optimizer.step()",
)
def scheduler_before_step(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        steps = opt_step_events(mod, sc)
        for s in sched_step_events(mod, sc):
            if not s.loops:
                continue
            later = [o for o in steps if o.idx > s.idx and o.loops[: len(s.loops)] == s.loops]
            earlier = [o for o in steps if o.idx < s.idx and s.loops[-1] in o.loops]
            if later and not earlier:
                yield Hit(
                    s.node,
                    f"'{s.recv}.step()' runs before '{later[0].recv}.step()' in the loop: the first learning-rate value is skipped",
                )


CLIP = ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm")


def _clip_events(sc):
    return [e for e in sc.events if e.attr in CLIP]


@rule(
    "LC105",
    "clip-outside-backward-step",
    "error",
    TORCH,
    """Flags gradient clipping placed after ``optimizer.step()`` or before ``backward()`` in the
    loop. Clipping only affects the update when it runs between ``backward()`` (gradients exist)
    and ``step()`` (gradients are consumed); elsewhere it clips stale or zero gradients and the
    update is unclipped.""",
    "clip between loss.backward() (and scaler.unscale_) and optimizer.step()",
)
def clip_misplaced(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        for lid, _evs in training_loops(mod, sc):
            bws_all = [e for e in backward_events(sc) if lid in e.loops]
            steps_all = [e for e in opt_step_events(mod, sc) if lid in e.loops]
            if not steps_all:
                continue
            for c in _clip_events(sc):
                if lid not in c.loops:
                    continue
                steps, bws = on_path(c, steps_all), on_path(c, bws_all)
                if not steps:
                    continue
                if all(s.idx < c.idx for s in steps) and all(b.idx < c.idx for b in bws):
                    yield Hit(
                        c.node,
                        f"'{c.text}' runs after '{steps[-1].text}': the update was already applied unclipped",
                    )
                elif all(b.idx > c.idx for b in bws) and all(s.idx > c.idx for s in steps):
                    yield Hit(
                        c.node,
                        f"'{c.text}' runs before backward(): it clips last step's (or zero) gradients",
                    )


@rule(
    "LC106",
    "clip-without-unscale",
    "error",
    ("pytorch", "amp"),
    """Flags gradient clipping while a ``GradScaler`` scales the loss, without
    ``scaler.unscale_(optimizer)`` before the clip. The gradients are still multiplied by the
    loss scale (often 65536), so the norm threshold is meaningless and clipping either always
    fires or never does.""",
    "call scaler.unscale_(optimizer) right before clip_grad_norm_",
)
def clip_without_unscale(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        scaled = [e for e in sc.events if e.attr == "scale" and is_scaler(mod, e.recv)]
        if not scaled:
            continue
        for c in _clip_events(sc):
            if not on_path(c, scaled):
                continue  # clipping in the branch that does not scale (the non-AMP path)
            if not c.loops or "accelerator" in c.recv or mod.has(c.recv, "accelerator"):
                continue
            if mod.is_model(c.recv) and c.recv:
                continue  # FSDP's model.clip_grad_norm_ handles scaling itself
            un = [
                e
                for e in sc.events
                if e.attr == "unscale_" and e.idx < c.idx and c.loops[-1] in e.loops
            ]
            if not un:
                yield Hit(
                    c.node,
                    f"'{c.text}' clips gradients still multiplied by the loss scale of '{on_path(c, scaled)[0].text}' (no unscale_ before it)",
                )


@rule(
    "LC107",
    "scaler-step-bypassed",
    "error",
    ("pytorch", "amp"),
    """Flags a loop that backpropagates ``scaler.scale(loss)`` but calls ``optimizer.step()``
    directly instead of ``scaler.step(optimizer)``. The update then uses gradients multiplied by
    the loss scale and skips the inf/NaN check, so the weights blow up.""",
    "replace optimizer.step() with scaler.step(optimizer); scaler.update()",
)
def scaler_step_bypassed(mod: ModuleFacts):
    for sc in mod.bw_scopes:
        scaled = [e for e in sc.events if e.attr == "scale" and is_scaler(mod, e.recv)]
        if not scaled:
            continue
        for e in sc.events:
            if (
                e.attr == "step"
                and is_optimizer(mod, e.recv)
                and not is_scaler(mod, e.recv)
                and e.loops
            ):
                mine = [s for s in on_path(e, scaled) if s.loops and s.loops[-1] in e.loops]
                if mine:
                    yield Hit(
                        e.node,
                        f"'{e.text}' is called directly while the loss is scaled by '{mine[0].text}': gradients are not unscaled",
                    )


@rule(
    "LC108",
    "accumulation-loss-not-scaled",
    "warning",
    TORCH,
    """Flags gradient accumulation (the optimizer steps only every N micro-batches, under an
    ``if step % N`` test) where the loss is backpropagated without dividing by N. The
    accumulated gradient is N times the mean-batch gradient, which multiplies the effective
    learning rate (and the clipping threshold) by N.""",
    "divide the loss by the accumulation steps before backward(): (loss / accum_steps).backward()",
)
def accumulation_not_scaled(mod: ModuleFacts):
    divided = set()
    if not mod.calls_attr("backward"):
        return
    for node in mod.nodes(ast.AugAssign, ast.Assign):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div):
            divided.add(dotted(node.target))
        elif isinstance(node, ast.Assign) and any(
            isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) for n in ast.walk(node.value)
        ):
            for t in node.targets:
                divided.add(dotted(t))
    for sc in mod.bw_scopes:
        for lid, _evs in training_loops(mod, sc):
            steps = [e for e in opt_step_events(mod, sc) if lid in e.loops]
            if not steps or not all(any(is_mod_test(t) for t in s.ifs) for s in steps):
                continue
            for b in backward_events(sc):
                if lid not in b.loops or any(is_mod_test(t) for t in b.ifs):
                    continue
                if "accelerator" in b.recv or mod.has(b.recv, "accelerator"):
                    continue
                node = b.node
                expr = loss_expr(b)
                if expr is None:
                    continue
                if any(
                    isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) for n in ast.walk(expr)
                ):
                    continue
                names = {
                    dotted(n) for n in ast.walk(expr) if isinstance(n, ast.Name | ast.Attribute)
                }
                if names & divided:
                    continue
                yield Hit(
                    node,
                    f"'{ast.unparse(expr)}' is backpropagated on every micro-batch but not divided by the accumulation steps",
                )


@rule(
    "LC109",
    "loss-accumulated-with-graph",
    "warning",
    TORCH,
    """Flags ``total += loss`` or ``losses.append(loss)`` where ``loss`` is a tensor that is
    backpropagated. Each iteration keeps its whole autograd graph alive, so memory grows until
    OOM, and logging reads a graph-carrying tensor. Accumulate ``loss.item()`` or
    ``loss.detach()``.""",
    "accumulate loss.item() (or loss.detach()) instead of the loss tensor",
)
def loss_accumulated(mod: ModuleFacts):
    if mod.is_test:
        return  # a test keeps a few losses to compare them; memory growth is not its concern
    bw_names = set()
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            if isinstance(b.node.func, ast.Attribute) and isinstance(b.node.func.value, ast.Name):
                bw_names.add(b.node.func.value.id)
    if not bw_names:
        return
    for node in mod.nodes(ast.For, ast.While, ast.AsyncFor):
        if True:
            for sub in ast.walk(node):
                if (
                    isinstance(sub, ast.AugAssign)
                    and isinstance(sub.op, ast.Add)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id in bw_names
                    and dotted(sub.target) != sub.value.id
                ):
                    yield Hit(
                        sub,
                        f"'{dotted(sub.target)} += {sub.value.id}' keeps every iteration's autograd graph alive",
                    )
                elif (
                    isinstance(sub, ast.Call)
                    and isinstance(sub.func, ast.Attribute)
                    and sub.func.attr == "append"
                    and len(sub.args) == 1
                    and isinstance(sub.args[0], ast.Name)
                    and sub.args[0].id in bw_names
                ):
                    yield Hit(
                        sub,
                        f"'{dotted(sub.func)}({sub.args[0].id})' keeps every iteration's autograd graph alive",
                    )


def _fresh_params(mod: ModuleFacts, e, loop: ast.AST | None) -> bool:
    """The optimizer built at ``e`` takes a name assigned inside ``loop`` (a tensor made fresh
    each iteration, e.g. an adversarial perturbation): a new optimizer per iteration is right."""
    if loop is None or not isinstance(e.node, ast.Call):
        return False
    lo, hi = loop.lineno, getattr(loop, "end_lineno", loop.lineno)
    used = {n.id for a in e.node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
    return any(
        lo < st.lineno <= hi and st.lineno < e.node.lineno
        for name in used
        for _v, st in mod.assigns.get(name, [])
    )


@rule(
    "LC110",
    "optimizer-created-in-loop",
    "error",
    TORCH,
    """Flags an optimizer constructed inside the training loop. Each iteration starts from a
    fresh optimizer: Adam moments, momentum buffers and step counts are reset every step, so the
    optimizer degenerates into something like sign-SGD and any scheduler attached to the old
    instance stops acting. Create the optimizer once, before the loop.""",
    "construct the optimizer (and scheduler) once before the training loop",
)
def optimizer_in_loop(mod: ModuleFacts):
    from toolkit.static.engine import OPTIMIZER_NAMES

    for sc in _step_functions(mod):  # a train_step(...) called per batch builds its optimizer
        for e in sc.events:
            if e.via or e.loops or not isinstance(e.node, ast.Call):
                continue
            last = e.q.rsplit(".", 1)[-1]
            builds = last in OPTIMIZER_NAMES and (e.q.startswith("torch.optim") or e.q == last)
            if not builds and e.q and "." not in e.q:
                fs = mod.program.function(e.q, path=mod.path)
                builds = (fs is not None and fs.returns_optimizer) or "optim:" in _resolved_refs(
                    mod, e.q, e.line
                )
            if builds:
                yield Hit(
                    e.node,
                    f"'{e.text}' builds a new optimizer in '{sc.node.name}()', which is called once per batch: optimizer state is reset every step",
                )
    for sc in mod.bw_scopes:
        for lid, evs in training_loops(mod, sc):
            for e in evs:
                last = e.q.rsplit(".", 1)[-1]
                from toolkit.static.engine import OPTIMIZER_NAMES

                loop = sc.loops.get(lid)
                data_loop = isinstance(loop, ast.For | ast.AsyncFor) and mod._loaderish(loop.iter)
                # Built in the innermost loop that runs backward: once per step, whatever the
                # loop iterates over (unless it optimizes tensors made fresh in that loop).
                step_loop = (  # a loop that trains: backward, step and zero_grad all in it
                    bool(e.loops)
                    and e.loops[-1] == lid
                    and not e.via
                    and any(z.attr == "zero_grad" for z in evs)
                    and not _fresh_params(mod, e, loop)
                )
                if not (data_loop or step_loop):
                    continue
                builds = last in OPTIMIZER_NAMES and (
                    e.q.startswith("torch.optim")
                    or e.q.split(".")[0] in ("bnb", "bitsandbytes", "transformers")
                    or e.q == last
                )
                if not builds and mod.program is not None and e.q:
                    fs = mod.program.function(e.q, path=mod.path)  # a helper that builds one
                    builds = fs is not None and fs.returns_optimizer
                if builds:
                    what = "is constructed" if last in OPTIMIZER_NAMES else "builds a new optimizer"
                    yield Hit(
                        e.node,
                        f"'{e.q}(...)' {what} inside the training loop: optimizer state is reset every iteration",
                    )


@rule(
    "LC111",
    "method-not-called",
    "error",
    TORCH,
    """Flags ``model.eval``, ``model.train``, ``optimizer.zero_grad``, ``optimizer.step``,
    ``loss.backward`` or ``scheduler.step`` written as a bare attribute without parentheses. The
    statement does nothing, so the model stays in the wrong mode or the step never happens.""",
    "add the parentheses: model.eval() / optimizer.zero_grad() / loss.backward()",
)
def method_not_called(mod: ModuleFacts):
    for st in mod.attr_stmts:
        attr = st.value.attr  # type: ignore[attr-defined]
        recv = dotted(st.value.value)  # type: ignore[attr-defined]
        if not recv:
            continue
        ok = (
            (attr in ("eval", "train") and mod.is_model(recv))
            or (attr == "zero_grad" and (is_optimizer(mod, recv) or mod.is_model(recv)))
            or (attr == "step" and (is_optimizer(mod, recv) or is_scheduler(mod, recv)))
            or (attr == "backward" and "loss" in recv.lower())
            or (attr == "update" and is_scaler(mod, recv))
        )
        if ok:
            yield Hit(st, f"'{recv}.{attr}' is referenced but not called: add ()")


EPOCH_SCHEDULERS = ("StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "PolynomialLR")
# a period written in optimizer steps (``len(loader) * epochs``, ``total_steps``); a bare
# ``step_size`` is StepLR's own parameter name and says nothing about the unit
PER_STEP_HINT = re.compile(
    r"len\(|iter|batches|total|num_training|max_steps|num_steps|train_steps|steps_per|n_steps",
    re.I,
)


def _epoch_scheduler(mod: ModuleFacts, recv: str) -> tuple[str, str] | None:
    """(class, argument text) when ``recv`` is a scheduler whose period is counted in epochs."""
    for v, _ in mod.assigns.get(recv, []):
        if not isinstance(v, ast.Call):
            continue
        last = mod.resolve(v.func).rsplit(".", 1)[-1]
        if last not in EPOCH_SCHEDULERS:
            continue
        period = None
        for k in ("step_size", "milestones", "T_max", "total_iters"):
            period = kwarg(v, k) if kwarg(v, k) is not None else period
        if period is None and len(v.args) > 1 and last != "ExponentialLR":
            period = v.args[1]
        text = ast.unparse(period) if period is not None else ""
        if text and PER_STEP_HINT.search(text) and "epoch" not in text.lower():
            return None  # the period is counted in optimizer steps: stepping per batch is right
        if last == "CosineAnnealingLR" and "epoch" not in text.lower():
            return None  # T_max of unknown unit: commonly the total number of steps
        return last, text
    return None


def _passed_epoch_scheduler(mod: ModuleFacts, sc, recv: str) -> str:
    """``recv`` is a parameter of this function and some caller (in any checked file) passes an
    epoch-counted scheduler there: its text, else ''."""
    node = sc.node
    if node is None or mod.program is None or not isinstance(node, ast.FunctionDef):
        return ""
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    if recv not in params:
        return ""
    i = params.index(recv) - (1 if params and params[0] == "self" else 0)
    for site in mod.program.callers(mod.path, node.name):
        for pos, text in site.epoch_schedulers:
            if pos == i:
                return f"{text} (passed by {Path(site.path).name}:{site.line})"
    return ""


@rule(
    "LC112",
    "epoch-scheduler-stepped-per-batch",
    "warning",
    TORCH,
    """Flags ``scheduler.step()`` inside the batch loop when the scheduler's period is counted in
    epochs (``StepLR(step_size=30)``, ``MultiStepLR(milestones=[30, 60])``, ``ExponentialLR``,
    ``CosineAnnealingLR(T_max=epochs)``). Stepped per batch, the schedule runs through in the
    first epoch(s): the learning rate collapses (ExponentialLR with gamma 0.95 is below 1e-20 of
    its start after 1,000 batches) and the rest of training barely moves.""",
    "call scheduler.step() once per epoch (after the batch loop), or size the schedule in steps",
)
def epoch_scheduler_per_batch(mod: ModuleFacts):
    yield from _step_function_scheduler(mod)
    for sc in mod.bw_scopes:
        for s in sched_step_events(mod, sc):
            if not s.loops or any(is_mod_test(t) for t in s.ifs):
                continue
            loop = mod._loop_nodes.get(s.loops[-1])
            if not isinstance(loop, ast.For | ast.AsyncFor) or not mod._loaderish(loop.iter):
                continue
            found = _epoch_scheduler(mod, s.recv)
            if found is not None:
                cls, period = found
                what = f"{cls}({period})" if period else cls
            else:
                what = _passed_epoch_scheduler(mod, sc, s.recv)
                if not what:
                    continue
            yield Hit(
                s.node,
                f"'{s.text}' runs every batch but '{s.recv}' is {what}, a schedule counted in epochs: it runs through in the first epoch(s)",
            )


def _step_functions(mod: ModuleFacts):
    """Functions that run one training step (backward + optimizer step, no loop of their own)
    and are called per batch: every call sits in a loop or comprehension (any checked file)."""
    if mod.program is None:
        return
    for sc in mod.bw_scopes:
        if sc.node is None or not isinstance(sc.node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        bws = [b for b in backward_events(sc) if not b.via]
        if not bws or any(b.loops for b in bws):
            continue
        if mod.program.per_batch(mod.path, sc.node.name):
            yield sc


def _resolved_refs(mod: ModuleFacts, name: str, line: int) -> set[str]:
    """What a parameter or ``self.x`` set from a constructor parameter is, across callers."""
    from toolkit.static.rules._common import param_values

    return {mod.program.resolve(r, p) for r, p in param_values(mod, name, line)}


def _step_function_scheduler(mod: ModuleFacts):
    for sc in _step_functions(mod):
        for s in sched_step_events(mod, sc):
            if s.loops or s.via or any(is_mod_test(t) for t in s.ifs):
                continue
            found = _epoch_scheduler(mod, s.recv)
            if found is not None:
                what = f"{found[0]}({found[1]})" if found[1] else found[0]
            else:
                refs = _resolved_refs(mod, s.recv, s.line)
                scheds = {r.split(":", 1)[1] for r in refs if r.startswith("sched:")}
                if len(scheds) != 1 or len(refs) != 1:
                    continue
                what = scheds.pop()
            yield Hit(
                s.node,
                f"'{s.text}' runs in '{sc.node.name}()', which is called once per batch, but '{s.recv}' is {what}, a schedule counted in epochs: it runs through in the first epoch(s)",
            )


TARGET_NAME_RE = re.compile(r"target|teacher|ema|old|frozen|ref", re.I)


def _model_calls(mod: ModuleFacts, expr: ast.AST, depth: int = 0) -> list[ast.Call]:
    """Model forward calls ``expr`` is computed from, not cut by ``.detach()``/``.item()``."""
    out: list[ast.Call] = []
    if depth > 3:
        return out
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        if expr.func.attr in ("detach", "item", "detach_", "numpy", "tolist", "cpu_detach"):
            return out
    if isinstance(expr, ast.Name):
        vals = mod.assigns.get(expr.id, [])
        if len(vals) == 1 and not isinstance(vals[0][1], ast.For | ast.AsyncFor):
            return _model_calls(mod, vals[0][0], depth + 1)
        if not vals:  # `dist, values = model(obs)`: an element of a model's returned tuple
            tup = tuple_bindings(mod).get(expr.id, [])
            if len(tup) == 1:
                return _model_calls(mod, tup[0][0], depth + 1)
        return out
    if isinstance(expr, ast.Call):
        f = expr.func
        if isinstance(f, ast.Name | ast.Attribute) and mod.is_model(dotted(f)):
            out.append(expr)
            return out
    for child in ast.iter_child_nodes(expr):
        if isinstance(child, ast.expr):
            out += _model_calls(mod, child, depth)
    return out


def _no_grad_at(mod: ModuleFacts, call: ast.Call) -> bool:
    for sc in mod.scopes:
        for e in sc.events:
            if e.node is call:
                return bool(e.ctx & {"no_grad", "inference_mode"})
    return False


@rule(
    "LC113",
    "target-not-detached",
    "warning",
    TORCH,
    """Flags a loss whose target is computed by a network in the same graph: a bootstrapped
    TD target (``reward + gamma * model(next_state).max(1)[0]``) or a teacher's/target network's
    output that is neither detached nor computed under ``torch.no_grad()``. Backward then also
    pushes the target towards the prediction (the online network chases its own moving target,
    DQN/actor-critic diverge) or fills the teacher with gradients it never uses.""",
    "compute the target under torch.no_grad() (or call .detach() on it)",
)
def target_not_detached(mod: ModuleFacts):
    from toolkit.static.rules.losses import REGRESSION_LOSSES, loss_calls

    if not any(True for _ in loss_calls(mod, extra=REGRESSION_LOSSES)):
        return
    if not mod.calls_attr("backward") and not (
        mod.program is not None  # the loss is built here (a Distiller.forward), backward elsewhere
        and any(m.trains for m in mod.program.neighbours(mod))
    ):
        return
    from toolkit.static.rules.evalmode import _optimized_names

    frozen = "requires_grad_(False)" in mod.source or "requires_grad = False" in mod.source
    optimized = _optimized_names(mod)
    for c, _kind, inp, tgt in loss_calls(mod, extra=REGRESSION_LOSSES):
        if inp is None or tgt is None:
            continue
        pred_models = {dotted(m.func) for m in _model_calls(mod, inp)}
        for m in _model_calls(mod, tgt):
            name = dotted(m.func)
            if _no_grad_at(mod, m):
                continue
            same = name in pred_models
            aux = bool(TARGET_NAME_RE.search(name.rsplit(".", 1)[-1])) and not frozen
            if not (same or aux or frozen) and optimized and name and name not in optimized:
                # a network the optimizer does not train while the prediction's network is
                # trained (a target network synced by load_state_dict, a teacher)
                aux = bool(pred_models & optimized)
            if same or aux:
                why = (
                    f"the same network '{name}' as the prediction"
                    if same
                    else f"'{name}', a network that is not trained here and not frozen"
                )
                yield Hit(
                    _target_site(mod, tgt, c, m) or m,
                    f"the target '{ast.unparse(tgt)}' of '{ast.unparse(c.func)}(...)' comes from {why} ('{ast.unparse(m)}' at line {m.lineno}), without detach()/no_grad: backward flows into the target too",
                )
                break


def _target_site(mod: ModuleFacts, tgt: ast.expr, loss: ast.Call, net: ast.Call) -> ast.AST | None:
    """Where a named target is computed (the assignment that needs ``.detach()``): its last
    binding before the loss call, when that and the network call ``net`` are in the loss's
    function; None otherwise (the network call is then the place to fix)."""
    if not isinstance(tgt, ast.Name):
        return None
    from toolkit.static.rules._common import enclosing_function, scoped_bindings

    fn = enclosing_function(mod, loss.lineno)[0]
    if enclosing_function(mod, net.lineno)[0] is not fn:
        return None
    vals = scoped_bindings(mod, mod.assigns.get(tgt.id, []), loss.lineno, tgt.id)
    before = [
        st
        for _v, st in vals
        if st.lineno <= loss.lineno and enclosing_function(mod, st.lineno)[0] is fn
    ]
    return max(before, key=lambda st: st.lineno) if before else None


@rule(
    "LC114",
    "zero-grad-on-one-branch",
    "error",
    TORCH,
    """Flags a function that calls ``optimizer.step()`` on a path where gradients are not
    cleared: ``step()`` in both arms of an ``if`` and ``zero_grad()`` in only one, or
    ``zero_grad()`` only under a condition the step does not share (``if step % log_every ==
    0:``), with nothing else in the function or its callers clearing them. On the other path (often the default one, e.g. no clipping
    configured) gradients are never cleared and every step applies the sum of all earlier
    gradients.""",
    "clear gradients on every path: call optimizer.zero_grad(set_to_none=True) after the if/else (or in the caller's loop)",
)
def zero_grad_one_branch(mod: ModuleFacts):
    if not mod.calls_attr("zero_grad"):
        return
    for sc in mod.scopes:
        if sc.node is None:
            continue
        steps = [e for e in opt_step_events(mod, sc) if not e.via]
        zeros = zero_grad_events(sc)
        if not steps or not zeros:
            continue
        for s in steps:
            on = [z for z in zeros if not exclusive(z, s)]
            at = s
            if on:
                if any(set(z.arms) <= set(s.arms) for z in on):
                    continue  # cleared whenever this step runs
                cond = ast.unparse(on[0].ifs[-1]) if on[0].ifs else "a condition"
                why = f"zero_grad() only runs under 'if {cond}'"
                at = on[0]  # the clearing that has to move out of the condition
            elif any(exclusive(s, o) and any(not exclusive(z, o) for z in zeros) for o in steps):
                why = "zero_grad() is only on the other branch"
            else:
                continue
            if mod.program is not None and sc.name != "<module>":
                func = sc.name.rsplit(".", 1)[-1]
                sites = mod.program.callers(mod.path, func)
                if any(
                    (fs := mod.program.function(site.caller, path=site.path)) is not None
                    and fs.clears_grads
                    for site in sites
                ):
                    continue  # a caller clears them
            where = "" if at is s else f" (line {s.line})"
            yield Hit(
                at.node,
                f"'{s.text}'{where} runs on a path where gradients are never cleared ({why}): they accumulate across steps",
            )
            break
