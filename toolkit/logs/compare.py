"""Compare a run with a baseline run at matched steps.

Metrics are paired by role (``train_loss`` with ``train_loss`` even when one log calls it
``loss`` and the other ``train/loss``), then by identical name. Both curves are smoothed with
the same EMA after the baseline is linearly interpolated onto the run's steps inside the shared
step range (so both lag alike), and the relative deviation ``(run - baseline) / |baseline|`` is measured there. A metric
alerts when ``|deviation|`` exceeds its tolerance at any matched step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import ROLES, Run, Series

DEFAULT_TOLERANCE = 0.1
EMA_ALPHA = 0.1  # weight of the newest point in the smoothing applied before comparing


@dataclass
class MetricDeviation:
    metric: str  # name in the run
    baseline_metric: str  # name in the baseline
    role: str | None
    tolerance: float  # relative, e.g. 0.1 = 10 %
    matched_points: int
    step_start: int | None  # shared step range
    step_end: int | None
    max_rel_dev: float | None  # signed deviation with the largest magnitude
    max_dev_step: int | None
    mean_abs_rel_dev: float | None
    final_rel_dev: float | None
    first_alert_step: int | None
    alert: bool
    note: str = ""


@dataclass
class Comparison:
    run: str
    baseline: str
    metrics: list[MetricDeviation] = field(default_factory=list)
    only_in_baseline: list[str] = field(default_factory=list)
    only_in_run: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[MetricDeviation]:
        return [m for m in self.metrics if m.alert]


def ema(values: np.ndarray, alpha: float = EMA_ALPHA) -> np.ndarray:
    """Exponential moving average, vectorised in blocks (no Python loop per point)."""
    x = np.asarray(values, dtype=np.float64)
    out = np.empty_like(x)
    if x.size == 0:
        return out
    beta = 1.0 - alpha
    block = 256  # beta**block stays well above float underflow for alpha <= 0.9
    prev = x[0]
    powers = beta ** np.arange(1, block + 1)
    for lo in range(0, x.size, block):
        chunk = x[lo : lo + block]
        k = chunk.size
        p = powers[:k]
        # y_i = beta^(i+1) prev + alpha * sum_{j<=i} beta^(i-j) x_j
        scaled = chunk / (beta ** np.arange(k)) if beta > 0 else chunk
        acc = np.cumsum(scaled) * (beta ** np.arange(k))
        out[lo : lo + k] = p * prev + alpha * acc
        prev = out[lo + k - 1]
    return out


def _pairs(run: Run, baseline: Run) -> list[tuple[Series, Series]]:
    pairs, used_run, used_base = [], set(), set()
    for role in ROLES:
        a, b = run.role(role), baseline.role(role)
        if a is not None and b is not None:
            pairs.append((a, b))
            used_run.add(a.name)
            used_base.add(b.name)
    for name, series in run.series.items():
        if name not in used_run and name in baseline.series and name not in used_base:
            pairs.append((series, baseline.series[name]))
    return pairs


def _tolerance_for(series: Series, tolerance: float | Mapping[str, float]) -> float:
    if isinstance(tolerance, Mapping):
        for key in (series.name, series.role):
            if key is not None and key in tolerance:
                return float(tolerance[key])
        return float(tolerance.get("default", DEFAULT_TOLERANCE))
    return float(tolerance)


def compare_series(a: Series, b: Series, tolerance: float) -> MetricDeviation:
    def empty(note: str) -> MetricDeviation:
        return MetricDeviation(
            a.name,
            b.name,
            a.role,
            tolerance,
            0,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            False,
            note,
        )

    ok_a, ok_b = np.isfinite(a.values), np.isfinite(b.values)
    sa, va = a.steps[ok_a], a.values[ok_a]
    sb, vb = b.steps[ok_b], b.values[ok_b]
    if sa.size == 0 or sb.size == 0:
        return empty("no finite values in " + ("run" if sa.size == 0 else "baseline"))
    lo, hi = max(sa[0], sb[0]), min(sa[-1], sb[-1])
    inside = (sa >= lo) & (sa <= hi)
    if hi < lo or not inside.any():
        return empty(f"no shared steps (run {sa[0]}-{sa[-1]}, baseline {sb[0]}-{sb[-1]})")
    steps = sa[inside]
    # interpolate first, smooth second: the same EMA on the same grid lags both curves equally
    ya = ema(va[inside])
    yb = ema(np.interp(steps, sb, vb))
    denom = np.abs(yb)
    denom = np.where(denom > 0, denom, np.finfo(float).tiny)
    dev = (ya - yb) / denom
    i = int(np.argmax(np.abs(dev)))
    over = np.flatnonzero(np.abs(dev) > tolerance)
    note = ""
    if a.values.size != va.size:
        note = f"{a.values.size - va.size} non-finite run values left out"
    return MetricDeviation(
        metric=a.name,
        baseline_metric=b.name,
        role=a.role,
        tolerance=tolerance,
        matched_points=int(steps.size),
        step_start=int(lo),
        step_end=int(hi),
        max_rel_dev=float(dev[i]),
        max_dev_step=int(steps[i]),
        mean_abs_rel_dev=float(np.abs(dev).mean()),
        final_rel_dev=float(dev[-1]),
        first_alert_step=int(steps[over[0]]) if over.size else None,
        alert=bool(over.size),
        note=note,
    )


def compare(
    run: Run, baseline: Run, tolerance: float | Mapping[str, float] = DEFAULT_TOLERANCE
) -> Comparison:
    """Per-metric deviation of ``run`` from ``baseline``; ``tolerance`` is relative (0.1 = 10 %),
    one number for all metrics or ``{metric name or role: tol, "default": tol}``."""
    pairs = _pairs(run, baseline)
    if not pairs:
        raise InputError(
            f"{run.path} and {baseline.path} share no metric (run: {', '.join(run.series)}; "
            f"baseline: {', '.join(baseline.series)})"
        )
    result = Comparison(str(run.path), str(baseline.path))
    for a, b in pairs:
        result.metrics.append(compare_series(a, b, _tolerance_for(a, tolerance)))
    paired_run = {a.name for a, _ in pairs}
    paired_base = {b.name for _, b in pairs}
    result.only_in_run = [n for n in run.series if n not in paired_run]
    result.only_in_baseline = [n for n in baseline.series if n not in paired_base]
    return result
