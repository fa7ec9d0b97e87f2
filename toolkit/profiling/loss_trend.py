"""Is the loss going down? Compares the mean loss of the first and last windows of a short run."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from toolkit.profiling.checks import Check

MIN_STEPS = 6  # fewer losses than this cannot show a trend


@dataclass
class LossTrend:
    """Means over the first and last ``window`` losses; ``relative_drop`` = (first - last) / |first|.

    ``noise`` is twice the standard error of the difference of the two means: a drop smaller
    than this is indistinguishable from batch-to-batch noise.
    """

    steps: int
    window: int
    first_mean: float
    last_mean: float
    relative_drop: float
    noise: float
    first_loss: float
    last_loss: float


def trend(losses: list[float]) -> LossTrend | None:
    if len(losses) < MIN_STEPS:
        return None
    window = max(3, len(losses) // 5)
    head, tail = losses[:window], losses[-window:]
    m1, m2 = statistics.fmean(head), statistics.fmean(tail)
    se = math.sqrt(statistics.variance(head) / window + statistics.variance(tail) / window)
    return LossTrend(
        steps=len(losses),
        window=window,
        first_mean=m1,
        last_mean=m2,
        relative_drop=(m1 - m2) / abs(m1) if m1 else 0.0,
        noise=2 * se,
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
    numbers = (
        f"mean of first {t.window} steps {t.first_mean:.4g} -> last {t.window} steps {t.last_mean:.4g} "
        f"({-100 * t.relative_drop:+.1f}%, noise +-{t.noise:.2g})"
    )
    if t.relative_drop >= min_loss_drop and (t.first_mean - t.last_mean) > t.noise:
        return Check("loss trend", "pass", f"decreasing: {numbers}")
    return Check(
        "loss trend",
        "fail",
        f"not decreasing by >= {100 * min_loss_drop:g}% beyond noise: {numbers}",
    )
