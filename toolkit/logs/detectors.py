"""Detectors over a parsed :class:`~toolkit.logs.series.Run`; thresholds in :mod:`.config`.

Each finding names its kind, severity (error / warning / info), the step range, the numbers
that show it (``evidence``) and a ranked list of likely causes with what to check next.
All math is vectorised numpy; rolling windows are trailing (a point never sits in its own
baseline) and on very long series are evaluated every ``hop`` points (hop <= window / 2).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from toolkit.logs.config import Thresholds
from toolkit.logs.series import Run, Series

SEVERITIES = ("error", "warning", "info")
MAD_TO_SIGMA = 1.4826


@dataclass
class Cause:
    cause: str
    check: str


@dataclass
class Finding:
    kind: str
    severity: str  # error | warning | info
    metric: str
    step_start: int
    step_end: int
    message: str
    evidence: dict[str, float | int | str | None] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)


@dataclass
class Report:
    path: str
    format: str
    findings: list[Finding]
    warnings: list[str]
    roles: dict[str, str]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


# ----------------------------------------------------------------------------- numeric helpers


def trailing_median_mad(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of the ``window`` points before each point (NaN for the first ``window``)."""
    n = x.size
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    if window < 3 or n <= window:
        return med, mad
    hop = max(1, min(window // 2, n // 50_000))
    wins = sliding_window_view(x, window)[: n - window : hop]
    m = np.median(wins, axis=1)
    d = np.median(np.abs(wins - m[:, None]), axis=1)
    anchor = (np.arange(window, n) - window) // hop
    med[window:] = m[anchor]
    mad[window:] = d[anchor]
    return med, mad


def _runs(mask: np.ndarray, max_gap: int = 1) -> list[tuple[int, int]]:
    """(first, last) index of each run of True, runs closer than ``max_gap`` merged."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap)
    firsts = np.concatenate(([idx[0]], idx[breaks + 1]))
    lasts = np.concatenate((idx[breaks], [idx[-1]]))
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def _finite(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of the finite points (cached on the series)."""
    if "finite" not in series.cache:
        ok = np.isfinite(series.values)
        series.cache["finite"] = (
            (series.steps, series.values) if ok.all() else (series.steps[ok], series.values[ok])
        )
    return series.cache["finite"]


def _rolling(series: Series, window: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`trailing_median_mad` of the finite values (cached: several detectors share it)."""
    key = ("rolling", window)
    if key not in series.cache:
        series.cache[key] = trailing_median_mad(_finite(series)[1], window)
    return series.cache[key]


def _lr_at(run: Run, step: int) -> float | None:
    lr = run.role("lr")
    if lr is None or len(lr) == 0:
        return None
    i = int(np.clip(np.searchsorted(lr.steps, step, side="right") - 1, 0, len(lr) - 1))
    return float(lr.values[i])


def _last_step(run: Run) -> int:
    return max((int(s.steps[-1]) for s in run.series.values() if len(s)), default=0)


def _first_step(run: Run) -> int:
    return min((int(s.steps[0]) for s in run.series.values() if len(s)), default=0)


# ----------------------------------------------------------------------------- causes

_C = Cause
CAUSES: dict[str, list[Cause]] = {
    "nan_inf": [
        _C("exploding gradients", "grad_norm in the steps before; clip gradients (max_norm=1.0)"),
        _C(
            "learning rate too high",
            "lr at that step vs its peak; lower it 2-10x or lengthen warmup",
        ),
        _C("fp16 overflow", "train in bf16, or check the loss scaler is not skipping every step"),
        _C(
            "bad batch (NaN/Inf or empty input, zero-length target)",
            "assert torch.isfinite on the batch of that step; log its indices",
        ),
        _C(
            "unsafe op (log(0), sqrt(<0), division by zero)",
            "torch.autograd.set_detect_anomaly(True) around that step",
        ),
    ],
    "loss_spike": [
        _C(
            "gradient spike (outlier batch or instability)",
            "grad_norm around the spike; clip gradients, skip or inspect that batch",
        ),
        _C(
            "learning rate too high at this point",
            "lr at the spike vs its peak; spikes right after warmup -> longer warmup",
        ),
        _C(
            "bad or out-of-distribution batch",
            "re-run the batch of that step; check the data shard/order there",
        ),
        _C("Adam second moment too small (large models)", "try eps=1e-6..1e-8 up, beta2=0.95"),
        _C(
            "resumed run without optimizer/scheduler state",
            "was a checkpoint loaded near that step? compare lr before and after",
        ),
    ],
    "grad_norm_spike": [
        _C("outlier batch", "inspect the batch of that step (length, labels, duplicates)"),
        _C("learning rate too high", "lr at that step; gradient clipping configured?"),
        _C("loss-scale change (fp16)", "loss-scaler value around that step"),
    ],
    "divergence": [
        _C("learning rate too high", "lower peak lr 2-10x; check the schedule's peak step"),
        _C("no or too short warmup", "lr over the first steps; warm up over 1-5 % of steps"),
        _C(
            "numerical instability (fp16, attention logits)",
            "bf16, QK-norm / logit soft-cap, grad clipping",
        ),
        _C(
            "data pipeline change (new shard, corrupt data)",
            "which data the run reached at the start step",
        ),
        _C(
            "optimizer misconfiguration (weight decay on norms/bias, betas)",
            "optimizer param groups",
        ),
    ],
    "plateau": [
        _C(
            "learning rate too low or decayed too early",
            "lr over the plateau vs its peak; scheduler total steps",
        ),
        _C("learning rate too high (loss bouncing at a floor)", "try 3x lower lr for a short run"),
        _C("frozen or unused parameters", "count parameters with requires_grad and nonzero grads"),
        _C("data repeated / exhausted or noisy labels", "epoch boundaries, dataset size vs steps"),
        _C("model capacity reached", "compare with a larger model or the baseline run"),
    ],
    "overfitting": [
        _C(
            "too many passes over a small dataset",
            "epochs at the val minimum; stop or checkpoint there",
        ),
        _C("too little regularisation", "dropout, weight decay, data augmentation"),
        _C("train/val distribution mismatch", "how the validation split was made"),
    ],
    "lr_exhausted": [
        _C(
            "scheduler total steps shorter than the run",
            "num_training_steps / max_steps vs the steps actually run",
        ),
        _C(
            "scheduler stepped per micro-batch (gradient accumulation)",
            "scheduler.step() calls per optimizer step",
        ),
        _C(
            "epochs or dataset length changed after the scheduler was built",
            "dataloader length at scheduler creation",
        ),
    ],
    "no_warmup": [
        _C("warmup not configured", "warmup_steps / warmup_ratio in the config"),
        _C("scheduler not attached or created after the first step", "lr printed at step 0 and 1"),
    ],
    "throughput_drop": [
        _C(
            "data loader stall (I/O, too few workers)",
            "dataloader wait time per step; num_workers, prefetch",
        ),
        _C(
            "evaluation or checkpointing inside the timed loop", "eval/save steps vs the drop steps"
        ),
        _C("GPU throttling or another job on the GPU", "nvidia-smi clocks, power, other processes"),
        _C(
            "recompilation or memory fragmentation (changing shapes)",
            "torch.compile recompiles, allocator retries",
        ),
    ],
}


def _causes(kind: str, first: str | None = None) -> list[Cause]:
    causes = list(CAUSES[kind])
    if first:
        causes.sort(key=lambda c: c.cause != first)
    return causes


# ----------------------------------------------------------------------------- detectors


def detect_nonfinite(run: Run, th: Thresholds) -> list[Finding]:
    findings = []
    for series in run.series.values():
        bad = ~np.isfinite(series.values)
        if not bad.any():
            continue
        i = int(np.argmax(bad))
        step = int(series.steps[i])
        vital = series.role in ("train_loss", "val_loss", "grad_norm", "lr")
        before = series.values[:i][np.isfinite(series.values[:i])]
        causes = _causes("nan_inf")
        grad = run.role("grad_norm")
        if series.role == "train_loss" and grad is not None:
            g_steps, g_vals = _finite(grad)
            prior = g_vals[(g_steps < step) & (g_steps >= step - th.grad_lead_steps)]
            earlier = g_vals[g_steps < step - th.grad_lead_steps]
            exploding = prior.size and earlier.size and prior.max() > 3 * np.median(earlier)
            if not exploding:  # no grad-norm rise before: exploding gradients goes last
                causes.sort(key=lambda c: c.cause == "exploding gradients")
        findings.append(
            Finding(
                kind="nan_inf",
                severity="error" if vital else "warning",
                metric=series.name,
                step_start=step,
                step_end=int(series.steps[bad][-1]),
                message=f"{series.name} is {series.values[i]} first at step {step} ({int(bad.sum())} non-finite of {len(series)})",
                evidence={
                    "first_step": step,
                    "first_value": str(series.values[i]),
                    "count": int(bad.sum()),
                    "points": len(series),
                    "last_finite_value": float(before[-1]) if before.size else None,
                },
                causes=causes,
            )
        )
    return findings


BLOCK_WINDOWS = 20  # windows per block of the noise-scale floor (see _block_scale)


def _spike_window(n: int, window: int) -> int:
    """Points in the trailing window of the spike detectors for a series of ``n`` points."""
    return min(window, max(10, n // 10))


def _prefetch_rolling(run: Run, th: Thresholds) -> None:
    """Compute the spike detectors' rolling medians of loss and grad norm on two threads.

    Worth it on long runs only (numpy's partition releases the GIL); results land in the
    series caches, where the detectors find them.
    """
    jobs = []
    for role in ("train_loss", "grad_norm"):
        series = run.role(role)
        if series is not None and len(series) >= 100_000:
            jobs.append((series, _spike_window(_finite(series)[1].size, th.spike_window)))
    if len(jobs) == 2:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda job: _rolling(*job), jobs))


def _block_scale(x: np.ndarray, med: np.ndarray, window: int) -> np.ndarray:
    """The typical noise around each point: 1.4826 x the median absolute deviation from the
    rolling median over blocks of ``BLOCK_WINDOWS`` windows (NaN where unknown).

    A MAD over one short window is itself noisy: where it happens to come out small, ordinary
    noise gets a large robust z, and a long log has thousands of windows, so some do. The block
    scale (many windows, one spike cannot move it) is the floor of the spike detectors' scale.
    """
    block = window * BLOCK_WINDOWS
    n = x.size
    out = np.full(n, np.nan)
    if n < 2 * block:
        return out
    dev = np.abs(x - med)
    starts = np.arange(0, n, block)
    for a in starts:
        seg = dev[a : a + block]
        seg = seg[np.isfinite(seg)]
        if seg.size >= window:
            out[a : a + block] = MAD_TO_SIGMA * np.median(seg)
    return out


def _spikes(
    series: Series, window: int, z_thr: float, min_rel: float
) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    steps, x = _finite(series)
    w = _spike_window(x.size, window)
    med, mad = _rolling(series, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        if x.size and x.min() > 0:  # multiplicative noise (loss, grad norm): z of log(x)
            y, level, local = np.log(x), np.log(med), mad / med
        else:
            y, level, local = x, med, mad
        scale = np.fmax(MAD_TO_SIGMA * local, _block_scale(y, level, w))
        z = (y - level) / scale
    z = np.where(scale > 0, z, np.where(x > med, np.inf, 0.0))
    mask = (z > z_thr) & (x - med > min_rel * np.abs(med))
    return [(a, b, steps, x, med, scale, z) for a, b in _runs(mask, max_gap=2)]


def detect_loss_spikes(run: Run, th: Thresholds, grad_spikes: list[Finding]) -> list[Finding]:
    series = run.role("train_loss")
    if series is None or len(series) < 20:
        return []
    findings = []
    spikes = _spikes(series, th.spike_window, th.spike_z, th.spike_min_rel)
    if not spikes:
        return []
    _, x = _finite(series)
    prev_min = np.minimum.accumulate(np.concatenate(([np.inf], x[:-1])))
    prev_max = np.maximum.accumulate(np.concatenate(([-np.inf], x[:-1])))
    for a, b, steps, x, med, _scale, z in spikes:
        peak = a + int(np.argmax(x[a : b + 1]))
        over_min = x[peak] / prev_min[peak] if prev_min[peak] > 0 else np.inf
        over_max = x[peak] / prev_max[peak] if prev_max[peak] > 0 else np.inf
        severe = over_min > th.spike_factor_min or over_max > th.spike_factor_max
        start, end = int(steps[a]), int(steps[b])
        trigger = [g for g in grad_spikes if start - th.grad_lead_steps <= g.step_start <= start]
        lr = _lr_at(run, int(steps[peak]))
        evidence = {
            "peak_step": int(steps[peak]),
            "peak_value": float(x[peak]),
            "rolling_median": float(med[peak]),
            "robust_z": float(z[peak]),
            "factor_over_running_min": float(over_min),
            "factor_over_running_max": float(over_max),
            "lr": lr,
            "grad_spike_step": trigger[0].step_start if trigger else None,
        }
        for g in trigger:
            g.evidence["precedes_loss_spike_at"] = start
        msg = (
            f"loss spike at step {start}"
            + (f"-{end}" if end != start else "")
            + f": {x[peak]:.4g} vs rolling median {med[peak]:.4g} (robust z {z[peak]:.1f}, "
            + f"{over_min:.2f}x the lowest earlier loss)"
            + (f"; grad-norm spike at step {trigger[0].step_start} before it" if trigger else "")
        )
        findings.append(
            Finding(
                kind="loss_spike",
                severity="error" if severe else "warning",
                metric=series.name,
                step_start=start,
                step_end=end,
                message=msg,
                evidence=evidence,
                causes=_causes(
                    "loss_spike",
                    "gradient spike (outlier batch or instability)"
                    if trigger
                    else "bad or out-of-distribution batch",
                ),
            )
        )
    return findings


def detect_grad_spikes(run: Run, th: Thresholds) -> list[Finding]:
    series = run.role("grad_norm")
    if series is None or len(series) < 20:
        return []
    findings = []
    for a, b, steps, x, med, _scale, z in _spikes(
        series, th.spike_window, th.grad_spike_z, th.grad_spike_min_rel
    ):
        peak = a + int(np.argmax(x[a : b + 1]))
        findings.append(
            Finding(
                kind="grad_norm_spike",
                severity="warning",
                metric=series.name,
                step_start=int(steps[a]),
                step_end=int(steps[b]),
                message=f"gradient-norm spike at step {int(steps[a])}: {x[peak]:.4g} vs rolling median {med[peak]:.4g} (robust z {z[peak]:.1f})",
                evidence={
                    "peak_step": int(steps[peak]),
                    "peak_value": float(x[peak]),
                    "rolling_median": float(med[peak]),
                    "robust_z": float(z[peak]),
                },
                causes=_causes("grad_norm_spike"),
            )
        )
    return findings


def detect_divergence(run: Run, th: Thresholds) -> list[Finding]:
    series = run.role("train_loss")
    if series is None or len(series) < 2 * th.divergence_min_points:
        return []
    steps, x = _finite(series)
    w = min(th.spike_window, max(5, x.size // 20))
    med, _ = _rolling(series, w)
    # centre the trailing median on its window so the onset step is not late by w/2
    smooth = np.full(x.size, np.nan)
    smooth[: x.size - w // 2] = med[w // 2 :]
    valid = np.isfinite(smooth)
    if not valid.any():
        return []
    best = np.fmin.accumulate(np.where(valid, smooth, np.nan))
    denom = np.where(np.abs(best) > 0, np.abs(best), 1.0)
    rise = (smooth - best) / denom
    findings = []
    for a, b in _runs(valid & (rise > th.divergence_rel_rise), max_gap=1):
        if b - a + 1 < th.divergence_min_points and b < x.size - w // 2 - 1:
            continue
        if b - a + 1 < max(3, th.divergence_min_points // 4):
            continue
        best_i = int(np.nanargmin(smooth[: a + 1]))
        findings.append(
            Finding(
                kind="divergence",
                severity="error",
                metric=series.name,
                step_start=int(steps[a]),
                step_end=int(steps[b]),
                message=(
                    f"sustained loss rise from step {int(steps[a])} to {int(steps[b])}: smoothed loss "
                    f"{smooth[b]:.4g}, {100 * rise[b]:.0f}% above its best {best[a]:.4g} at step {int(steps[best_i])}"
                ),
                evidence={
                    "best_smoothed_loss": float(best[a]),
                    "best_step": int(steps[best_i]),
                    "smoothed_loss_at_end": float(smooth[b]),
                    "max_rise_frac": float(np.nanmax(rise[a : b + 1])),
                    "points": int(b - a + 1),
                    "window_points": int(w),
                },
                causes=_causes("divergence"),
            )
        )
    return findings


def detect_plateau(run: Run, th: Thresholds) -> list[Finding]:
    series = run.role("train_loss")
    if series is None:
        return []
    steps, x = _finite(series)
    w = max(th.plateau_min_points, int(th.plateau_window_frac * x.size))
    if x.size < 2 * w:
        return []
    hop = max(1, w // 5)
    # windows of more than ~4,000 points are thinned evenly (medians and the slope fit do not
    # need every point of a 100,000-point window, and 1M-row logs stay fast)
    thin = max(1, w // 4000)
    wins = sliding_window_view(x, w)[::hop, ::thin]
    swins = sliding_window_view(steps.astype(np.float64), w)[::hop, ::thin]
    q = max(2, wins.shape[1] // 4)
    first_q = np.median(wins[:, :q], axis=1)
    last_q = np.median(wins[:, -q:], axis=1)
    level = np.abs(np.median(wins, axis=1))
    level = np.where(level > 0, level, 1.0)
    rel_change = (last_q - first_q) / level
    s_c = swins - swins.mean(axis=1, keepdims=True)
    slope = (s_c * (wins - wins.mean(axis=1, keepdims=True))).sum(axis=1) / (s_c**2).sum(axis=1)
    fit_change = slope * (swins[:, -1] - swins[:, 0]) / level
    flat = (np.abs(rel_change) < th.plateau_rel_change) & (
        np.abs(fit_change) < th.plateau_rel_change
    )
    lr = run.role("lr")
    peak_lr = float(np.nanmax(lr.values)) if lr is not None and len(lr) else None
    findings = []
    for a, b in _runs(flat, max_gap=1):
        i0, i1 = a * hop, min(b * hop + w - 1, x.size - 1)
        start, end = int(steps[i0]), int(steps[i1])
        lr_mid = None
        severity = "warning"
        if lr is not None and peak_lr and peak_lr > 0:
            in_range = lr.values[(lr.steps >= start) & (lr.steps <= end)]
            if in_range.size:
                lr_mid = float(np.nanmedian(in_range))
                if lr_mid < th.plateau_lr_decayed * peak_lr:
                    severity = "info"
        total = float(last_q[b] - first_q[a]) / float(level[a])
        findings.append(
            Finding(
                kind="plateau",
                severity=severity,
                metric=series.name,
                step_start=start,
                step_end=end,
                message=(
                    f"train loss flat from step {start} to {end}: relative change {100 * total:+.2f}% "
                    f"(threshold {100 * th.plateau_rel_change:g}% per {w}-point window)"
                    + (
                        " while lr had decayed (expected near the end)"
                        if severity == "info"
                        else ""
                    )
                ),
                evidence={
                    "rel_change": total,
                    "max_abs_fit_change": float(np.abs(fit_change[a : b + 1]).max()),
                    "window_points": int(w),
                    "loss_level": float(level[a]),
                    "median_lr": lr_mid,
                    "peak_lr": peak_lr,
                },
                causes=_causes("plateau"),
            )
        )
    return findings


def detect_overfitting(run: Run, th: Thresholds) -> list[Finding]:
    val = run.role("val_loss")
    if val is None:
        return []
    v_steps, v = _finite(val)
    if v.size < 1 + th.overfit_min_evals:
        return []
    i_min = int(np.argmin(v))
    v_min = float(v[i_min])
    after = v[i_min + 1 :]
    if after.size < th.overfit_min_evals:
        return []
    threshold = v_min + th.overfit_rel_rise * abs(v_min)
    tail = after[-th.overfit_min_evals :]
    if not (tail > threshold).all():
        return []
    start, end = int(v_steps[i_min]), int(v_steps[-1])
    train = run.role("train_loss")
    t_start = t_end = None
    if train is not None:
        t_steps, t = _finite(train)
        seg = t[(t_steps >= start) & (t_steps <= end)]
        if seg.size >= 4:
            k = max(1, seg.size // 5)
            t_start, t_end = float(np.median(seg[:k])), float(np.median(seg[-k:]))
            if t_end >= t_start:
                return []  # train loss not falling: divergence/plateau, not overfitting
    rise = (float(v[-1]) - v_min) / abs(v_min) if v_min else float("inf")
    return [
        Finding(
            kind="overfitting",
            severity="warning",
            metric=val.name,
            step_start=start,
            step_end=end,
            message=(
                f"validation loss rose {100 * rise:.1f}% from its minimum {v_min:.4g} at step {start} "
                f"to {float(v[-1]):.4g} at step {end}"
                + (
                    f" while train loss fell {t_start:.4g} -> {t_end:.4g}"
                    if t_start is not None
                    else " (no train loss to compare)"
                )
            ),
            evidence={
                "val_min": v_min,
                "val_min_step": start,
                "val_last": float(v[-1]),
                "rise_frac": rise,
                "train_loss_at_val_min": t_start,
                "train_loss_at_end": t_end,
                "evals_after_min": int(after.size),
            },
            causes=_causes("overfitting"),
        )
    ]


def detect_lr_schedule(run: Run, th: Thresholds) -> list[Finding]:
    lr = run.role("lr")
    if lr is None or len(lr) < 3:
        return []
    steps, x = _finite(lr)
    if x.size < 3:
        return []
    peak = float(x.max())
    if peak <= 0:
        return []
    findings = []
    first, last = _first_step(run), _last_step(run)
    span = max(1, last - first)
    nonzero = np.flatnonzero(x > th.lr_zero_frac * peak)
    if nonzero.size and nonzero[-1] + 1 < x.size:
        i = int(nonzero[-1]) + 1
        zero_from = int(steps[i])
        frac = (last - zero_from) / span
        if frac > th.lr_exhausted_tail_frac:
            findings.append(
                Finding(
                    kind="lr_exhausted",
                    severity="warning",
                    metric=lr.name,
                    step_start=zero_from,
                    step_end=last,
                    message=(
                        f"learning rate ~0 (< {th.lr_zero_frac:g} x peak {peak:.3g}) from step {zero_from}: "
                        f"the last {100 * frac:.0f}% of the run trained with no lr"
                    ),
                    evidence={
                        "peak_lr": peak,
                        "zero_from_step": zero_from,
                        "last_step": last,
                        "frac_of_run": frac,
                    },
                    causes=_causes("lr_exhausted"),
                )
            )
    if steps[0] - first <= th.warmup_check_frac * span and x[0] >= th.warmup_start_frac * peak:
        if th.model_params is not None:
            big = th.model_params >= th.big_model_params
            why = f"model of {th.model_params:.3g} parameters"
        else:
            big = peak >= th.no_warmup_lr
            why = f"peak lr {peak:.3g} >= {th.no_warmup_lr:g}"
        findings.append(
            Finding(
                kind="no_warmup",
                severity="warning" if big else "info",
                metric=lr.name,
                step_start=int(steps[0]),
                step_end=int(steps[0]),
                message=f"no warmup: lr at step {int(steps[0])} is {x[0]:.3g}, {100 * x[0] / peak:.0f}% of its peak"
                + (f" ({why})" if big else ""),
                evidence={
                    "lr_first": float(x[0]),
                    "peak_lr": peak,
                    "model_params": th.model_params,
                },
                causes=_causes("no_warmup"),
            )
        )
    return findings


def detect_throughput_drops(run: Run, th: Thresholds) -> list[Finding]:
    series = run.role("throughput")
    if series is None or len(series) < 2 * th.throughput_window:
        return []
    steps, x = _finite(series)
    med, _ = _rolling(series, th.throughput_window)
    low = np.isfinite(med) & (x < (1 - th.throughput_drop_frac) * med)
    findings = []
    i = 0
    starts = np.flatnonzero(low)
    for a in starts.tolist():
        if a < i:
            continue
        base = float(med[a])
        # the rolling median sinks into a long drop; measure the drop against its start
        below = x[a:] < (1 - th.throughput_drop_frac) * base
        b = a + (int(np.argmin(below)) - 1 if not below.all() else below.size - 1)
        i = b + 1
        if b - a + 1 < th.throughput_min_points:
            continue
        worst = float(x[a : b + 1].min())
        findings.append(
            Finding(
                kind="throughput_drop",
                severity="warning",
                metric=series.name,
                step_start=int(steps[a]),
                step_end=int(steps[b]),
                message=f"throughput dropped {100 * (1 - worst / base):.0f}% (to {worst:.4g} from ~{base:.4g}) over steps {int(steps[a])}-{int(steps[b])}",
                evidence={"baseline": base, "lowest": worst, "points": int(b - a + 1)},
                causes=_causes("throughput_drop"),
            )
        )
    return findings


def analyze(run: Run, thresholds: Thresholds | None = None) -> Report:
    """Run every detector; findings sorted by severity, then step."""
    th = thresholds or Thresholds()
    _prefetch_rolling(run, th)
    grad = detect_grad_spikes(run, th)
    findings = (
        detect_nonfinite(run, th)
        + detect_loss_spikes(run, th, grad)
        + grad
        + detect_divergence(run, th)
        + detect_plateau(run, th)
        + detect_overfitting(run, th)
        + detect_lr_schedule(run, th)
        + detect_throughput_drops(run, th)
    )
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.step_start))
    return Report(str(run.path), run.format, findings, list(run.warnings), dict(run.roles))
