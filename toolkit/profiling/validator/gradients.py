"""Gradient health: global and per-parameter L2 norms, NaN/Inf, spikes and growth relative to
the run itself, clipping, unused and all-zero parameters.

Shared by ``--entry`` mode (read between ``backward()`` and the optimizer step, before any
clipping in ``optimizer_step``) and ``--script`` mode (read where the script first sees its
gradients: at ``clip_grad_norm_``, the optimizer pre-step, or after a closure's backward; see
``observer.py``). Norms are what the training code computes before clipping.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from toolkit.profiling.validator.checks import Check

ZERO_GRAD_NORM = (
    0.0  # a parameter whose gradient norm is exactly this on every step is frozen in effect
)
SPIKE_FACTOR = 10.0  # a step's global norm above this x the median of the steps before it
SPIKE_MIN_HISTORY = 5  # steps before a spike can be judged
GROWTH_FACTOR = 10.0  # median norm of the last window over the first's: growing without bound


@dataclass
class GradSample:
    """Gradients of one step. Norms are L2 over all elements; unitless."""

    global_norm: float
    norms: dict[str, float]  # parameter name -> L2 norm of its gradient
    missing: list[str]  # requires_grad but .grad is None


def sample(named_params: Iterable[tuple[str, torch.Tensor]]) -> GradSample:
    """Read the current ``.grad`` of every parameter that requires grad (one device sync)."""
    names, grads, missing = [], [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        if p.grad is None:
            missing.append(name)
        else:
            names.append(name)
            grads.append(p.grad.detach())
    if not grads:
        return GradSample(global_norm=float("nan"), norms={}, missing=missing)
    per = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
    total = torch.linalg.vector_norm(per)
    values = torch.cat([per, total.unsqueeze(0)]).tolist()
    return GradSample(
        global_norm=values[-1], norms=dict(zip(names, values[:-1], strict=True)), missing=missing
    )


@dataclass
class GradHealth:
    """Summary over all observed steps."""

    steps: int
    global_norm_first: float | None
    global_norm_last: float | None
    global_norm_max: float | None
    global_norm_median: float | None
    first_nonfinite_step: int | None
    nonfinite_params: list[str]
    never_received_grad: list[str]
    always_zero_grad: list[str]
    last_step_norms: dict[str, float] = field(default_factory=dict)
    global_norms: list[float] = field(default_factory=list)  # per step, pre-clip
    spikes: list[tuple[int, float, float]] = field(
        default_factory=list
    )  # step, norm, median before
    growth: float | None = None  # median of the last window / median of the first
    clip: ClipStats | None = None  # None: the code never called clip_grad_norm_


@dataclass
class ClipStats:
    """What ``clip_grad_norm_`` saw: ``steps`` steps called it, ``clipped`` of them had a total
    norm above ``max_norm`` (their updates were scaled down by max_norm / norm)."""

    steps: int
    clipped: int
    max_norm: float
    median_norm: float  # of clip_grad_norm_'s own total norms

    @property
    def fraction(self) -> float:
        return self.clipped / self.steps if self.steps else 0.0


def clip_stats(clips: list[tuple[float, float]]) -> ClipStats | None:
    """From per-step ``(total norm, max_norm)`` pairs as clip_grad_norm_ returned them."""
    if not clips:
        return None
    return ClipStats(
        steps=len(clips),
        clipped=sum(1 for norm, limit in clips if norm > limit),
        max_norm=clips[-1][1],
        median_norm=statistics.median(norm for norm, _ in clips),
    )


@contextlib.contextmanager
def watch_clipping(
    before: Callable[[list[torch.Tensor]], None], after: Callable[[float, float], None]
) -> Iterator[None]:
    """Wrap ``torch.nn.utils.clip_grad_norm_``: ``before(params)`` runs with the gradients as the
    code is about to clip them; ``after(total_norm, max_norm)`` gets the norm it computed."""
    from torch.nn.utils import clip_grad

    original = clip_grad.clip_grad_norm_

    def clip_grad_norm_(parameters: Any, max_norm: float, *args: Any, **kwargs: Any) -> Any:
        params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
        before(params)
        total = original(params, max_norm, *args, **kwargs)
        after(float(total), float(max_norm))
        return total

    owners = (torch.nn.utils, clip_grad)
    for owner in owners:
        owner.clip_grad_norm_ = clip_grad_norm_
    try:
        yield
    finally:
        for owner in owners:
            owner.clip_grad_norm_ = original


def spikes(norms: list[float]) -> list[tuple[int, float, float]]:
    """Steps (1-based) whose norm exceeds SPIKE_FACTOR x the running median of earlier steps."""
    found, history = [], []
    for i, g in enumerate(norms, 1):
        if not math.isfinite(g):
            break
        if len(history) >= SPIKE_MIN_HISTORY:
            med = statistics.median(history)
            if med > 0 and g > SPIKE_FACTOR * med:
                found.append((i, g, med))
        history.append(g)
    return found


def growth(norms: list[float]) -> float | None:
    """Median global norm of the last fifth of the run over the first fifth's (>= 3 steps each)."""
    finite = [g for g in norms if math.isfinite(g)]
    w = max(3, len(finite) // 5)
    if len(finite) < 2 * w:
        return None
    first = statistics.median(finite[:w])
    return statistics.median(finite[-w:]) / first if first > 0 else None


class GradTracker:
    """Accumulates :class:`GradSample` s step by step; tiny memory (floats per parameter)."""

    def __init__(self) -> None:
        self.global_norms: list[float] = []
        self.first_nonfinite_step: int | None = None
        self.nonfinite_params: list[str] = []
        self.ever_received: set[str] = set()
        self.ever_nonzero: set[str] = set()
        self.all_names: list[str] = []
        self.last: GradSample | None = None

    def add(self, step: int, s: GradSample) -> bool:
        """Record step ``step``; return False if any gradient was NaN/Inf."""
        if not self.all_names:
            self.all_names = list(s.norms) + list(s.missing)
        self.global_norms.append(s.global_norm)
        self.ever_received.update(s.norms)
        self.ever_nonzero.update(n for n, v in s.norms.items() if v != ZERO_GRAD_NORM)
        self.last = s
        bad = [n for n, v in s.norms.items() if not math.isfinite(v)]
        if bad and self.first_nonfinite_step is None:
            self.first_nonfinite_step = step
            self.nonfinite_params = bad
        return not bad

    def summary(self, clips: list[tuple[float, float]] | None = None) -> GradHealth:
        """``clips``: per step that called clip_grad_norm_, its (total norm, max_norm)."""
        finite = [g for g in self.global_norms if math.isfinite(g)]
        return GradHealth(
            steps=len(self.global_norms),
            global_norm_first=self.global_norms[0] if self.global_norms else None,
            global_norm_last=self.global_norms[-1] if self.global_norms else None,
            global_norm_max=max(finite) if finite else None,
            global_norm_median=statistics.median(finite) if finite else None,
            first_nonfinite_step=self.first_nonfinite_step,
            nonfinite_params=self.nonfinite_params,
            never_received_grad=[n for n in self.all_names if n not in self.ever_received],
            always_zero_grad=sorted(self.ever_received - self.ever_nonzero),
            last_step_norms=dict(self.last.norms) if self.last else {},
            global_norms=list(self.global_norms),
            spikes=spikes(self.global_norms),
            growth=growth(self.global_norms),
            clip=clip_stats(clips or []),
        )


def judge(
    h: GradHealth, max_grad_norm: float | None = None, max_clip_fraction: float | None = None
) -> list[Check]:
    """Turn a :class:`GradHealth` into verdict lines. ``max_grad_norm``: an absolute bound on the
    global norm (off by default: the checks are relative to the run); ``max_clip_fraction``: the
    largest tolerated share of clipped steps (default: fail only when every step was clipped)."""
    if h.steps == 0:
        return [Check("gradients", "skip", "no step completed: gradients not observed")]
    checks = []
    if h.first_nonfinite_step is not None:
        shown = ", ".join(h.nonfinite_params[:3]) + (" ..." if len(h.nonfinite_params) > 3 else "")
        checks.append(
            Check(
                "gradients finite",
                "fail",
                f"NaN/Inf gradient at step {h.first_nonfinite_step} in {shown}",
            )
        )
    else:
        checks.append(
            Check("gradients finite", "pass", f"all gradients finite over {h.steps} steps")
        )
    if h.global_norm_max is not None:
        checks.append(_norm_check(h, max_grad_norm))
    if h.clip is not None:
        checks.append(_clip_check(h.clip, h.steps, max_clip_fraction))
    if h.never_received_grad:
        checks.append(
            Check(
                "every parameter gets a gradient",
                "warn",
                f"{len(h.never_received_grad)} parameter(s) require grad but never received one "
                f"(unused in forward, or detached): {', '.join(h.never_received_grad[:5])}",
            )
        )
    if h.always_zero_grad:
        checks.append(
            Check(
                "vanishing gradients",
                "warn",
                f"{len(h.always_zero_grad)} parameter(s) had an all-zero gradient on every step: "
                f"{', '.join(h.always_zero_grad[:5])}",
            )
        )
    return checks


def _norm_check(h: GradHealth, max_grad_norm: float | None) -> Check:
    span = (
        f"global norm (pre-clip) {h.global_norm_first:.3g} -> {h.global_norm_last:.3g}, "
        f"median {h.global_norm_median:.3g}, max {h.global_norm_max:.3g}"
    )
    if h.first_nonfinite_step is not None:
        return Check(
            "gradient norm",
            "warn",
            f"max finite global norm {h.global_norm_max:.3g} before the first non-finite "
            f"gradient at step {h.first_nonfinite_step}",
        )
    if max_grad_norm is not None and h.global_norm_max > max_grad_norm:
        return Check(
            "gradient norm", "fail", f"{span}: above the baseline's max_grad_norm {max_grad_norm:g}"
        )
    if h.growth is not None and h.growth >= GROWTH_FACTOR:
        return Check(
            "gradient norm",
            "fail",
            f"exploding: {span}; the last steps' median is {h.growth:.3g}x the first steps'",
        )
    if h.spikes:
        shown = ", ".join(f"step {s} {g:.3g} ({g / m:.0f}x median)" for s, g, m in h.spikes[:3])
        return Check(
            "gradient norm",
            "warn",
            f"{len(h.spikes)} spike(s) above {SPIKE_FACTOR:g}x the running median: {shown}; {span}",
        )
    bound = f" <= {max_grad_norm:g}" if max_grad_norm is not None else ""
    growth = f", last/first median {h.growth:.2g}x" if h.growth is not None else ""
    return Check(
        "gradient norm",
        "pass",
        f"{span}{bound}; no spike above {SPIKE_FACTOR:g}x the running median{growth}",
    )


def _clip_check(c: ClipStats, steps: int, max_fraction: float | None) -> Check:
    text = (
        f"clip_grad_norm_(max_norm={c.max_norm:g}) clipped {c.clipped} of {c.steps} steps "
        f"({c.fraction:.0%}); its total norm median {c.median_norm:.3g}"
    )
    if max_fraction is not None:
        ok = c.fraction <= max_fraction
        return Check(
            "gradient clipping",
            "pass" if ok else "fail",
            f"{text} {'<=' if ok else '>'} max_clip_fraction {max_fraction:g}",
        )
    if c.clipped == c.steps and c.steps >= SPIKE_MIN_HISTORY:
        return Check(
            "gradient clipping",
            "fail",
            f"{text}: every step clipped, so every update is scaled down (by "
            f"~{c.max_norm / c.median_norm:.2g}x at the median) and the learning rate is not the "
            "one set; raise max_norm, lower the LR, or set max_clip_fraction in --baseline if "
            "this is intended",
        )
    if c.fraction >= 0.5:
        return Check("gradient clipping", "warn", f"{text}: most steps clipped")
    return Check("gradient clipping", "pass", text)
