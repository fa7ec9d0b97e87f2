"""What ``--script`` mode sees of an unmodified training script, through torch's own entry points.

A *step* is one ``optimizer.step()`` of the first optimizer that steps, or, in a loop with no
torch optimizer (manual SGD), one scalar ``backward()``. Per step the observer records:

- the gradients as the training code first sees them: at ``clip_grad_norm_`` when the script
  clips (before clipping, after any ``GradScaler.unscale_``), else at the optimizer pre-step hook,
  else (closure optimizers such as LBFGS) after the first backward inside ``step(closure)``,
  in backward mode right after the backward;
- ``clip_grad_norm_``'s own total norm and ``max_norm`` (was the step clipped?);
- the loss: the scalar tensors ``backward()`` was called on (their mean; a closure step's first),
  unscaled when they came from ``GradScaler.scale(loss)``;
- the wall time from the previous step's end (a whole iteration: data, forward, backward, update,
  the script's logging), minus the observer's own statistics;
- tokens (integer input of >= 2 dims) or samples of the training-mode forwards of the root model;
- once, the FLOPs of step 2 under ``FlopCounterMode`` (that step is left out of the timing).

Limits: after ``max_steps`` steps, or when the wall clock passes ``deadline`` (the runner's start
plus ``--max-seconds``, start-up included: a SIGALRM timer in the main thread), the script is
stopped with :class:`StopScript`, a ``BaseException``, so its ``finally`` blocks run.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from toolkit import cli
from toolkit.compute.measured import _extra_formulas
from toolkit.profiling.validator import distributed, gradients, sanity

FLOPS_STEP = 2  # the step counted under FlopCounterMode (step 1 carries start-up)


class StopScript(BaseException):
    """Raised from a hook (or the deadline timer) to end the observed script."""


def param_names(params: list[torch.Tensor]) -> list[str]:
    """Names for ``params`` from the live module that owns most of them (one scan of the heap)."""
    ids = {id(p) for p in params}
    best: dict[int, str] = {}
    for obj in gc.get_objects():
        if issubclass(type(obj), nn.Module):  # type(): isinstance can trip lazy module proxies
            names = {id(p): n for n, p in obj.named_parameters() if id(p) in ids}
            if len(names) > len(best):
                best = names
                if len(best) == len(ids):
                    break
    return [best.get(id(p), f"param[{i}] {tuple(p.shape)}") for i, p in enumerate(params)]


def root_module(params: list[torch.Tensor]) -> nn.Module | None:
    """The innermost live module holding every one of ``params`` (the model being trained, not a
    wrapper such as DDP or a LightningModule around it, whose own forward may never run)."""
    ids = {id(p) for p in params}
    best: tuple[int, nn.Module] | None = None
    for obj in gc.get_objects():
        if issubclass(type(obj), nn.Module):
            own = [id(p) for p in obj.parameters()]
            if not ids <= set(own):
                continue
            if (
                best is None
                or len(own) < best[0]
                or (len(own) == best[0] and any(m is obj for m in best[1].modules()))
            ):
                best = (len(own), obj)
    return best[1] if best else None


def items_in(args: tuple, kwargs: dict) -> tuple[int, str, tuple[int, ...]] | None:
    """Tokens in the first integer input of >= 2 dims, else samples along dim 0 of the first."""
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    for t in tensors:
        if not t.is_floating_point() and t.dim() >= 2:
            return t.numel(), "tokens", tuple(t.shape)
    if tensors and tensors[0].dim() >= 1:
        return tensors[0].shape[0], "samples", tuple(tensors[0].shape)
    return None


class Observer:
    def __init__(
        self, max_steps: int, deadline: float, started: float, raise_on_stop: bool = True
    ) -> None:
        """``deadline`` and ``started`` are ``time.perf_counter()`` values. With ``raise_on_stop``
        False (framework callbacks) a reached limit only sets ``stop_requested``: the framework's
        own loop is asked to stop, nothing is raised into it."""
        self.max_steps, self.deadline, self.started = max_steps, deadline, started
        self.raise_on_stop = raise_on_stop
        self.stop_requested = False
        self.params: list[torch.Tensor] = []  # the counted optimizer's (or the loss graph's)
        self._graph_params: list[torch.Tensor] = []
        self.mode: str | None = None  # "optimizer" or "backward", fixed at the first backward
        self.optimizers_built = 0
        self.primary: int | None = None  # id of the optimizer whose steps are counted
        self.other_optimizer_steps = 0
        self.tracker = gradients.GradTracker()
        self.steps = 0
        self.times_ms: list[float] = []  # per step; the FLOPs-counted step is left out
        self.losses: list[float] = []
        self.backwards = 0
        self.first_step_ms: float | None = None  # runner start -> end of the first step
        self.last_end: float | None = None
        self.stats_s = 0.0  # observer time inside the current step, subtracted from it
        self.device: torch.device | None = None
        self.stop_reason = "script finished"
        self.notes: list[str] = []
        # per step, reset at its end
        self._losses: list[torch.Tensor] = []
        self._sample: gradients.GradSample | None = None
        self._closure = False
        self._in_step = False
        self._step_items: list[int] = []
        # clipping
        self.clip_calls = 0
        self.clips: dict[int, tuple[float, float]] = {}  # step -> (clip's total norm, max_norm)
        # throughput and FLOPs
        self.root: nn.Module | None = None
        self.unit = "tokens"
        self.input_shape: tuple[int, ...] | None = None
        self.items_per_step: list[int] = []
        self.autocast_dtype: torch.dtype | None = None
        self.flops: int | None = None
        self.flops_note = "not measured: the script stopped before step 2 ended"
        self._counter: Any = None
        self._names: dict[tuple[int, ...], list[str]] = {}
        self.unscaled: dict[int, torch.Tensor] = {}  # id(GradScaler.scale(loss)) -> loss
        self.loss_info: sanity.LossInfo | None = None  # first classification loss call
        self.rank = distributed.from_env()  # under torchrun: this process's rank
        self.record = distributed.Recorder(self.rank.rank if self.rank else 0)
        self._input_hash: str | None = None

    # ------------------------------------------------------------------ helpers

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _named(self, params: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        key = tuple(id(p) for p in params)
        if key not in self._names:
            self._names[key] = param_names(params)
        return list(zip(self._names[key], params, strict=True))

    def _take_sample(self, params: list[torch.Tensor]) -> None:
        t0 = time.perf_counter()
        if self.device is None and params:
            self.device = params[0].device
        self._sample = gradients.sample(self._named(params))
        self.stats_s += time.perf_counter() - t0

    def check_deadline(self) -> None:
        if self.raise_on_stop and time.perf_counter() >= self.deadline:
            self.stop_reason = "time limit reached"
            raise StopScript

    # ------------------------------------------------------------------ events

    def optimizer_built(self) -> None:
        self.optimizers_built += 1

    def before_backward(self, tensors: Any) -> None:
        self.check_deadline()
        if self.mode is None:
            self.mode = "optimizer" if self.optimizers_built else "backward"
        if self.mode == "backward" and self.steps >= self.max_steps and self.raise_on_stop:
            self.stop_reason = "max steps reached"
            raise StopScript
        t = tensors if isinstance(tensors, torch.Tensor) else next(iter(tensors or ()), None)
        if isinstance(t, torch.Tensor):
            t = self.unscaled.pop(id(t), t)  # GradScaler.scale(loss): record the loss itself
        if isinstance(t, torch.Tensor) and t.numel() == 1:
            if not (self._closure and self._losses):  # a closure step's loss is its first
                self._losses.append(t.detach())
        if self.mode == "backward" and self.root is None and isinstance(t, torch.Tensor):
            self._params_from_graph(t)

    def after_backward(self) -> None:
        self.backwards += 1
        if self.mode == "backward":
            self._take_sample(self._graph_params)
            self._end_step()
        elif self._in_step and self._closure and self._sample is None and self.params:
            self._take_sample(self.params)

    def clip(self, total_norm: float, max_norm: float) -> None:
        """Called by the clip_grad_norm_ wrapper; ``total_norm`` is what it computed."""
        self.clip_calls += 1
        step = self.steps if self.mode == "backward" else self.steps + 1
        self.clips.setdefault(step, (total_norm, max_norm))

    def before_clip(self, params: list[torch.Tensor]) -> None:
        if self.mode != "backward" and self._sample is None and not self._closure:
            self._take_sample(params)

    def pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.primary is None:
            self.primary = id(optimizer)
            self.params = [p for g in optimizer.param_groups for p in g["params"]]
            if self.mode == "backward":  # an optimizer built after the first backward
                self.notes.append(
                    "an optimizer first stepped after backward-only steps; "
                    f"{self.steps} earlier backward step(s) discarded"
                )
                self._reset_steps()
            self.mode = "optimizer"
        if id(optimizer) != self.primary:
            if not self._in_step:  # inside the counted step: a wrapper's inner optimizer
                self.other_optimizer_steps += 1
            return
        self._in_step = True
        # args is (optimizer, *step args): torch passes the bound method's self along
        self._closure = any(callable(a) for a in args[1:]) or kwargs.get("closure") is not None
        if self._closure:
            self._losses.clear()
        elif self._sample is None:
            self._take_sample(self.params)

    def post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if id(optimizer) != self.primary:
            return
        if self._sample is None:
            self._take_sample(self.params)
        self._end_step()

    def before_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        found = items_in(args, kwargs)
        if self.rank is not None and self._input_hash is None:
            first = next(
                (a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None
            )
            if first is not None:
                self._input_hash = distributed.input_hash(first)
        if found is not None:
            n, self.unit, shape = found
            self._step_items.append(n)
            self.input_shape = self.input_shape or shape
        if self.autocast_dtype is None and self.device is not None:
            kind = self.device.type
            if torch.is_autocast_enabled(kind):
                self.autocast_dtype = torch.get_autocast_dtype(kind)

    # ------------------------------------------------------------------ step bookkeeping

    def _params_from_graph(self, loss: torch.Tensor) -> None:
        """Leaf tensors the loss depends on (AccumulateGrad nodes): the parameters in backward mode."""
        if self._graph_params:
            return
        seen, found, stack = set(), [], [loss.grad_fn]
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            var = getattr(fn, "variable", None)
            if isinstance(var, torch.Tensor):
                found.append(var)
            stack.extend(f for f, _ in fn.next_functions)
        self._graph_params = found
        self.params = found

    def _reset_steps(self) -> None:
        self.steps, self.times_ms, self.losses = 0, [], []
        self.tracker = gradients.GradTracker()
        self.clips, self.items_per_step = {}, []

    def _end_step(self) -> None:
        self._sync()
        now = time.perf_counter()
        self.steps += 1
        self.tracker.add(self.steps, self._sample)
        if self._losses:
            self.losses.append(torch.stack([x.float() for x in self._losses]).mean().item())
        self.items_per_step.append(sum(self._step_items))
        if self.steps == 1:
            self.first_step_ms = 1e3 * (now - self.started)
            self._hook_root()
        elif self.steps != FLOPS_STEP and self.last_end is not None:
            self.times_ms.append(1e3 * (now - self.last_end - self.stats_s))
        self._flops_boundary()
        if self.rank is not None and self.steps in distributed.FINGERPRINT_STEPS:
            self.record.grads[self.steps] = dict(self._sample.norms)
            if self._input_hash is not None:
                self.record.inputs[self.steps] = self._input_hash
        self._losses, self._sample, self._closure, self._in_step = [], None, False, False
        self._step_items, self._input_hash = [], None
        self.stats_s = 0.0
        self.last_end = time.perf_counter()
        cli.report_progress(
            f"script step {self.steps}/{self.max_steps}", self.steps, self.max_steps
        )
        reason = None
        if self.tracker.first_nonfinite_step is not None:
            reason = f"non-finite gradient at step {self.tracker.first_nonfinite_step}"
        elif self.mode != "backward" and self.steps >= self.max_steps:
            reason = "max steps reached"
        elif time.perf_counter() >= self.deadline:
            reason = "time limit reached"
        if self.rank is not None and self.mode != "backward":
            # every rank stops after the same step, or one waits forever in the next all-reduce
            if distributed.agree_to_stop(reason is not None, self.device) and reason is None:
                reason = "another rank stopped (its limit or a non-finite gradient)"
        if reason is not None:
            self.stop_reason = reason
            self.stop_requested = True
            if self.raise_on_stop:
                raise StopScript

    def _hook_root(self) -> None:
        self.root = root_module(self.params)
        if self.root is not None:
            self._forward_handle = self.root.register_forward_pre_hook(
                self.before_forward, with_kwargs=True
            )

    def _flops_boundary(self) -> None:
        from torch.utils.flop_counter import FlopCounterMode

        if self.steps == FLOPS_STEP - 1:
            try:
                self._counter = FlopCounterMode(display=False, custom_mapping=_extra_formulas())
                self._counter.__enter__()
            except Exception as exc:
                self._counter = None
                self.flops_note = f"not measured: FlopCounterMode failed: {exc}"
        elif self.steps == FLOPS_STEP:
            self.finish_flops()

    def finish_flops(self) -> None:
        """Leave FlopCounterMode (at step 2's end, or when the script stops before)."""
        counter, self._counter = self._counter, None
        if counter is None:
            return
        try:
            counter.__exit__(None, None, None)
        except Exception as exc:
            self.flops_note = f"not measured: FlopCounterMode failed: {exc}"
            return
        if self.steps < FLOPS_STEP:
            return
        total = int(counter.get_total_flops())
        if total:
            self.flops = total
            self.flops_note = (
                f"measured on step {FLOPS_STEP} with FlopCounterMode (forward + backward of every "
                "forward in the step; matmul/conv/attention ops)"
            )
        else:
            self.flops_note = (
                "not measured: FlopCounterMode counted 0 FLOPs in step 2 "
                "(no matmul/conv ops it knows, or a compiled model it cannot see into)"
            )

    def close(self) -> None:
        self.finish_flops()
        handle = getattr(self, "_forward_handle", None)
        if handle is not None:
            handle.remove()

    def items_per_step_median(self) -> int | None:
        counted = [n for n in self.items_per_step[1:] if n] or [n for n in self.items_per_step if n]
        return int(statistics.median(counted)) if counted else None


@contextlib.contextmanager
def hooks(obs: Observer) -> Iterator[None]:
    """Install the observer on torch's entry points; undo everything on exit."""
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    handles = [
        register_optimizer_step_pre_hook(obs.pre_step),
        register_optimizer_step_post_hook(obs.post_step),
    ]
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def wrap_backward(original: Callable) -> Callable:
        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            obs.before_backward(tensors)
            out = original(tensors, *args, **kwargs)
            obs.after_backward()
            return out

        return backward

    def wrap_init(original: Callable) -> Callable:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            obs.optimizer_built()

        return __init__

    patch(torch.autograd, "backward", wrap_backward)
    patch(torch.optim.Optimizer, "__init__", wrap_init)

    def wrap_scale(original: Callable) -> Callable:
        def scale(self: Any, outputs: Any) -> Any:
            out = original(self, outputs)
            if isinstance(out, torch.Tensor) and out is not outputs and out.numel() == 1:
                obs.unscaled = {id(out): outputs}  # only the latest: no growth
            return out

        return scale

    patch(torch.amp.GradScaler, "scale", wrap_scale)
    if obs.rank is not None:
        patch(torch, "save", obs.record.save_hook)
    loss = sanity.watch_classification_loss(lambda info: setattr(obs, "loss_info", info))
    clip = gradients.watch_clipping(obs.before_clip, obs.clip)

    # SIGALRM stops a script that never reaches a step; under torchrun the ranks must stop after
    # the same step instead (agreed at each step end), so there is no timer
    alarm = (
        threading.current_thread() is threading.main_thread()
        and obs.rank is None
        and obs.raise_on_stop
    )
    if alarm:

        def on_alarm(signum: int, frame: Any) -> None:
            obs.stop_reason = "time limit reached"
            raise StopScript

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(obs.deadline - time.perf_counter(), 1e-3))
    try:
        with loss, clip:
            yield
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        obs.close()
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
        for h in handles:
            h.remove()
