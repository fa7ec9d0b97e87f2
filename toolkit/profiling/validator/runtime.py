"""Entry-mode runtime validation: train a bounded number of steps and measure them.

Each step is ``zero_grad -> loss_fn -> backward -> [gradient statistics] -> optimizer step``.
Step time covers the batch fetch, forward, backward and optimizer step, with a device
synchronize at each phase boundary (so the phases data / forward / backward / optimizer are
exact on a GPU too); the runner's gradient statistics are outside it.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from toolkit import cli
from toolkit.compute.measured import count_flops
from toolkit.profiling.spec import Batch, TrainSpec
from toolkit.profiling.validator import gradients, sanity


@dataclass
class StepTimes:
    """Step-time statistics in milliseconds over the steps after warm-up."""

    count: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    phases_mean_ms: dict[str, float]  # data, forward, backward, optimizer; empty if not observed

    @property
    def data_mean_ms(self) -> float | None:
        return self.phases_mean_ms.get("data")


PHASES = ("data", "forward", "backward", "optimizer")


def summarize_times(
    times_ms: list[float], warmup_steps: int, phases_ms: dict[str, list[float]] | None = None
) -> StepTimes | None:
    """Statistics over ``times_ms[warmup_steps:]``; None when no step is left after warm-up.

    ``phases_ms`` maps a phase name to its per-step ms, aligned with ``times_ms``.
    """
    measured = times_ms[warmup_steps:]
    if not measured:
        return None
    q = sorted(measured)
    return StepTimes(
        count=len(measured),
        mean_ms=statistics.fmean(measured),
        median_ms=statistics.median(measured),
        p90_ms=q[min(len(q) - 1, int(0.9 * len(q)))],
        min_ms=q[0],
        max_ms=q[-1],
        phases_mean_ms={
            k: statistics.fmean(v[warmup_steps:])
            for k, v in (phases_ms or {}).items()
            if v[warmup_steps:]
        },
    )


@dataclass
class TrainResult:
    steps: int
    warmup_steps: int
    stop_reason: str
    train_s: float  # wall seconds inside the timed steps
    first_step_ms: (
        float | None
    )  # entry mode: the first step; script mode: script start -> first step end
    times: StepTimes | None
    losses: list[float]
    grad: gradients.GradHealth
    flops_per_step: int | None  # measured forward+backward FLOPs of one step
    flops_note: str
    tokens_per_step: int | None
    throughput_unit: str  # "tokens" or "samples"
    # wall seconds of the FLOPs-counting forward+backward (not a timed step)
    flops_count_s: float = 0.0
    warmup_end_perf_s: float | None = None  # time.perf_counter() when the last warm-up step ended
    grad_stats_s: float = 0.0  # wall seconds spent reading gradient norms, outside the timed steps
    error: dict[str, object] | None = None  # step, type, message, traceback of a failed step
    step_times_ms: list[float] = field(default_factory=list)
    grad_source: str = "read after backward, before the optimizer step and any clipping"
    steps_counted_as: str = "optimizer steps"  # script mode: or "backward passes (no optimizer)"
    input_shape: list[int] | None = None  # first model input seen (script mode)
    loss_info: sanity.LossInfo | None = None  # the first classification loss call, if any


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _items_per_batch(batch: Batch) -> tuple[int | None, str]:
    """Tokens in an integer tensor (ids), else samples along dim 0 of the first tensor."""
    tensors = (
        [batch]
        if isinstance(batch, torch.Tensor)
        else list(batch.values())
        if isinstance(batch, dict)
        else list(batch)
        if isinstance(batch, list | tuple)
        else []
    )
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    for t in tensors:
        if not t.is_floating_point() and t.dim() >= 2:
            return t.numel(), "tokens"
    if tensors and tensors[0].dim() >= 1:
        return tensors[0].shape[0], "samples"
    return None, "samples"


def model_device(spec: TrainSpec) -> torch.device:
    return next((p.device for p in spec.model.parameters()), torch.device("cpu"))


def _loss_tensor(spec: TrainSpec, batch: Batch) -> torch.Tensor:
    loss = spec.loss_fn(spec.model, batch)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            f"loss_fn must return a scalar tensor, got {type(loss).__name__} {getattr(loss, 'shape', '')}"
        )
    return loss


def measure_flops(spec: TrainSpec, next_batch: Callable[[], Batch]) -> tuple[int | None, str]:
    """FLOPs of one forward+backward on one batch (no optimizer step; gradients cleared after).

    The batch is fetched outside the counter: data generation is not model FLOPs.
    """
    try:
        batch = next_batch()
        flops, _ = count_flops(lambda: _loss_tensor(spec, batch).backward())
    except Exception as exc:
        return None, f"not measured: FlopCounterMode failed: {type(exc).__name__}: {exc}"
    finally:
        spec.optimizer.zero_grad(set_to_none=True)
    if flops == 0:
        return None, "not measured: FlopCounterMode counted 0 FLOPs (no matmul/conv ops it knows)"
    return (
        flops,
        "measured with torch.utils.flop_counter.FlopCounterMode (forward + backward, matmul/conv/attention ops)",
    )


def train(
    spec: TrainSpec,
    next_batch: Callable[[], Batch],
    max_steps: int,
    deadline: float,
    warmup_steps: int,
) -> TrainResult:
    """Train until ``max_steps``, the ``deadline`` (a ``time.perf_counter()`` value, checked after
    each step) or the first failure. ``clip_grad_norm_`` calls inside ``optimizer_step`` and the
    first classification loss call are recorded."""
    model = spec.model
    device = model_device(spec)
    model.train()
    t_flops = time.perf_counter()
    flops, flops_note = measure_flops(spec, next_batch)
    flops_count_s = time.perf_counter() - t_flops
    run = _Run(spec, next_batch, device, warmup_steps)
    loss_info: list[sanity.LossInfo] = []
    with (
        sanity.watch_classification_loss(loss_info.append),
        gradients.watch_clipping(lambda params: None, run.clipped),
    ):
        for step in range(1, max_steps + 1):
            if not run.step(step):
                break
            cli.report_progress(f"training step {step}/{max_steps}", step, max_steps)
            if time.perf_counter() >= deadline and step < max_steps:
                run.stop = "time limit reached (whole run, setup included)"
                break
    times = run.times
    return TrainResult(
        steps=len(times),
        warmup_steps=min(warmup_steps, len(times)),
        stop_reason=run.stop,
        train_s=run.train_s,
        first_step_ms=times[0] if times else None,
        times=summarize_times(times, warmup_steps, run.phases),
        losses=run.losses,
        grad=run.tracker.summary(list(run.clips.values())),
        flops_per_step=flops,
        flops_note=flops_note,
        tokens_per_step=run.tokens,
        throughput_unit=run.unit,
        warmup_end_perf_s=run.warmup_end,
        flops_count_s=flops_count_s,
        grad_stats_s=run.stats_s,
        error=run.error,
        step_times_ms=times,
        loss_info=loss_info[0] if loss_info else None,
    )


class _Run:
    """State of one bounded training run; :meth:`step` does one synchronized, timed step."""

    def __init__(self, spec: TrainSpec, next_batch: Callable[[], Batch], device, warmup: int):
        self.spec, self.next_batch, self.device, self.warmup = spec, next_batch, device, warmup
        self.tracker = gradients.GradTracker()
        self.named = list(spec.model.named_parameters())
        self.losses: list[float] = []
        self.times: list[float] = []
        self.phases: dict[str, list[float]] = {p: [] for p in PHASES}
        self.tokens, self.unit = spec.tokens_per_step, "tokens"
        self.error: dict[str, object] | None = None
        self.stop = "max steps reached"
        self.train_s = self.stats_s = 0.0
        self.warmup_end: float | None = None
        self.clips: dict[int, tuple[float, float]] = {}
        self.current = 0

    def clipped(self, total_norm: float, max_norm: float) -> None:
        self.clips.setdefault(self.current, (total_norm, max_norm))

    def step(self, step: int) -> bool:
        """One step; False when training must stop (an exception, or a non-finite value)."""
        spec, device, opt = self.spec, self.device, self.spec.optimizer
        self.current = step
        try:
            _sync(device)
            t0 = time.perf_counter()
            batch = self.next_batch()
            _sync(device)  # host-to-device copies count as data, not forward
            t_data = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = _loss_tensor(spec, batch)
            _sync(device)
            t_fwd = time.perf_counter()
            loss.backward()
            _sync(device)
            t1 = time.perf_counter()
            grad_sample = gradients.sample(self.named)
            t2 = time.perf_counter()
            (spec.optimizer_step or opt.step)()
            _sync(device)
            t3 = time.perf_counter()
        except Exception as exc:
            self.error = {
                "step": step,
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(limit=8),
            }
            self.stop = f"step {step} raised {type(exc).__name__}"
            return False
        step_s = (t1 - t0) + (t3 - t2)
        self.stats_s += t2 - t1
        self.train_s += step_s
        self.times.append(step_s * 1e3)
        for name, ms in zip(
            PHASES, (t_data - t0, t_fwd - t_data, t1 - t_fwd, t3 - t2), strict=True
        ):
            self.phases[name].append(ms * 1e3)
        self.losses.append(loss.item())
        if self.tokens is None:
            self.tokens, self.unit = _items_per_batch(batch)
        if step == self.warmup or (self.warmup == 0 and step == 1):
            self.warmup_end = t3 if self.warmup else t0
        finite = self.tracker.add(step, grad_sample)
        if not finite or not math.isfinite(self.losses[-1]):
            self.stop = f"non-finite loss or gradient at step {step}"
            return False
        return True
