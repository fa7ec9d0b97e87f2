"""Is the loss going down? First vs last window of a short run, against the run's own noise.

Positive losses are compared on a log scale, so a run that converges fast (0.1 -> 1e-5) reads as
the large drop it is rather than as noise around zero. The noise is estimated from step-to-step
differences over the second half of the run, where a converging curve is flattest: the median
absolute deviation of the differences (drift removed by their median) gives the per-step noise
sigma, and the difference of two window means must exceed ``2 * sigma * sqrt(2 / window)``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from toolkit.profiling.validator.checks import Check

MIN_STEPS = 6  # fewer losses than this cannot show a trend
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation for normal noise


@dataclass
class LossTrend:
    """``first_mean``/``last_mean``: mean loss of the first/last ``window`` steps (loss units);
    ``relative_drop`` = (first_mean - last_mean) / |first_mean|. ``scale`` is "log" (natural log
    of the loss) or "linear"; ``drop`` and ``noise`` are in that scale: ``drop`` is the first
    window's mean minus the last's, ``noise`` the smallest drop distinguishable from noise."""

    steps: int
    window: int
    first_mean: float
    last_mean: float
    relative_drop: float
    scale: str
    drop: float
    noise: float
    first_loss: float
    last_loss: float


def step_noise(y: list[float]) -> float:
    """Per-step noise sigma of ``y`` from the differences over its second half (drift removed)."""
    half = y[len(y) // 2 - 1 :] if len(y) >= 4 else y
    diffs = [b - a for a, b in zip(half, half[1:], strict=False)]
    if len(diffs) < 2:
        return 0.0
    mid = statistics.median(diffs)
    mad = statistics.median(abs(d - mid) for d in diffs)
    return MAD_TO_SIGMA * mad / math.sqrt(2)


def trend(losses: list[float]) -> LossTrend | None:
    if len(losses) < MIN_STEPS:
        return None
    window = max(3, len(losses) // 5)
    log = all(v > 0 for v in losses)
    y = [math.log(v) for v in losses] if log else list(losses)
    m1, m2 = statistics.fmean(losses[:window]), statistics.fmean(losses[-window:])
    drop = statistics.fmean(y[:window]) - statistics.fmean(y[-window:])
    return LossTrend(
        steps=len(losses),
        window=window,
        first_mean=m1,
        last_mean=m2,
        relative_drop=(m1 - m2) / abs(m1) if m1 else 0.0,
        scale="log" if log else "linear",
        drop=drop,
        noise=2 * step_noise(y) * math.sqrt(2 / window),
        first_loss=losses[0],
        last_loss=losses[-1],
    )


def judge(losses: list[float], min_loss_drop: float) -> Check:
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad is not None:
        return Check("loss", "fail", f"loss is {losses[bad]} at step {bad + 1}")
    t = trend(losses)
    if t is None:
        return Check(
            "loss trend", "skip", f"{len(losses)} losses < {MIN_STEPS}: too few steps to judge"
        )
    unit = "log-loss" if t.scale == "log" else "loss"
    numbers = (
        f"mean of first {t.window} steps {t.first_mean:.4g} -> last {t.window} steps {t.last_mean:.4g} "
        f"({-100 * t.relative_drop:+.1f}%; drop {t.drop:.3g} vs noise {t.noise:.2g} in {unit})"
    )
    if t.relative_drop >= min_loss_drop and t.drop > t.noise:
        return Check("loss trend", "pass", f"decreasing: {numbers}")
    return Check(
        "loss trend",
        "fail",
        f"not decreasing by >= {100 * min_loss_drop:g}% beyond noise: {numbers}",
    )
