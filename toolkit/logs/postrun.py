"""Post-run summary (``logs postrun``): best value and step of a metric, the best complete
checkpoint by that metric, the curves, and the next step the numbers point to.

The checkpoint's metric is the last value logged at or before its step (``value_step`` says
which step that was). Checkpoints are found and checked for completeness by
:mod:`toolkit.watchdog.checkpoints` (``checkpoint-N`` folders/files, or a glob); nothing is
loaded or written. The next step is chosen from the detectors' findings and the curve:

1. an error finding (NaN, divergence, severe spike) -> debug it first;
2. overfitting -> keep the best checkpoint, stop earlier or regularise;
3. the metric still improving over the last 10% of its points (> 1%) -> train longer;
4. a plateau -> the run stopped learning: sweep the learning rate or stop earlier;
5. otherwise -> evaluate the best checkpoint on the held-out test set against the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.config import Thresholds
from toolkit.logs.detectors import Finding, analyze
from toolkit.logs.rank import default_metric, find_series, score
from toolkit.logs.series import Run
from toolkit.watchdog import checkpoints as ckpts

STILL_IMPROVING = 0.01  # relative gain over the last 10% of points that means "not done"


@dataclass
class CheckpointScore:
    path: str
    step: int | None
    value: float | None  # the metric at or before the checkpoint's step
    value_step: int | None
    complete: bool
    problem: str = ""


@dataclass
class PostRun:
    path: str
    format: str
    metric: str
    mode: str
    best: float | None
    best_step: int | None
    final: float | None
    final_step: int | None
    best_checkpoint: CheckpointScore | None
    checkpoints: list[CheckpointScore]
    next_step: str
    reasons: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    plot: str | None = None


def _value_at(steps: np.ndarray, values: np.ndarray, step: int) -> tuple[float | None, int | None]:
    ok = np.isfinite(values) & (steps <= step)
    if not ok.any():
        return None, None
    i = int(np.flatnonzero(ok)[-1])
    return float(values[i]), int(steps[i])


def score_checkpoints(
    run: Run, metric: str, mode: str, pattern: str | None, directory: str | None,
    required: tuple[str, ...] = (),
) -> list[CheckpointScore]:  # fmt: skip
    series = find_series(run, metric)
    out = []
    for path in ckpts.find(pattern, directory):
        step = ckpts.step_of(path)
        problem = ckpts.check(path, required) or ""
        value = value_step = None
        if series is not None and step is not None:
            value, value_step = _value_at(series.steps, series.values, step)
        out.append(CheckpointScore(str(path), step, value, value_step, not problem, problem))
    return out


def best_checkpoint(scores: list[CheckpointScore], mode: str) -> CheckpointScore | None:
    usable = [c for c in scores if c.complete and c.value is not None]
    if not usable:
        return None
    pick = min if mode == "min" else max
    return pick(usable, key=lambda c: c.value)


def _still_improving(run: Run, metric: str, mode: str) -> float | None:
    """Relative gain over the last 10% of the metric's finite points, when positive."""
    series = find_series(run, metric)
    if series is None:
        return None
    values = series.values[np.isfinite(series.values)]
    if values.size < 10:
        return None
    tail = max(2, values.size // 10)
    start, end = values[-tail], values[-1]
    gain = (start - end) if mode == "min" else (end - start)
    scale = abs(start) if start != 0 else 1.0
    return gain / scale if gain > 0 else None


def summarize(
    run: Run, metric: str | None = None, mode: str = "min", checkpoint_glob: str | None = None,
    checkpoint_dir: str | None = None, thresholds: Thresholds | None = None,
) -> PostRun:  # fmt: skip
    chosen = metric or default_metric([run])
    s = score(str(run.path), run, chosen, mode)
    if s.error:
        raise InputError(f"{run.path}: {s.error}")
    report = analyze(run, thresholds)
    cks = score_checkpoints(run, chosen, mode, checkpoint_glob, checkpoint_dir)
    best_ck = best_checkpoint(cks, mode)
    reasons: list[str] = []
    errors = report.errors
    overfit = [f for f in report.findings if f.kind == "overfitting"]
    plateau = [f for f in report.findings if f.kind == "plateau"]
    gain = _still_improving(run, chosen, mode)
    keep = (
        f"checkpoint {best_ck.path} (step {best_ck.step})"
        if best_ck
        else f"the state at step {s.best_step}"
    )
    if errors:
        first = errors[0]
        next_step = f"debug before anything else: {first.kind} at step {first.step_start} ({first.metric}); see labcoat:train-debug"
        reasons.append(first.message)
    elif overfit:
        next_step = f"keep {keep}, the best {s.metric}; stop earlier or regularise more (weight decay, dropout, more data)"
        reasons.append(overfit[0].message)
    elif gain is not None and gain > STILL_IMPROVING:
        next_step = f"train longer: {s.metric} still improved {gain:.1%} over the last 10% of its points; resume from {keep}"
        reasons.append(
            f"{s.metric} {s.final:.6g} at the last step {s.final_step}, still {'falling' if mode == 'min' else 'rising'}"
        )
    elif plateau:
        next_step = f"the run stopped learning from step {plateau[0].step_start}: sweep the learning rate (labcoat:hyperparam-sweep) or stop there next time; keep {keep}"
        reasons.append(plateau[0].message)
    else:
        next_step = (
            f"evaluate {keep} on the held-out test set against the baseline (labcoat:verification)"
        )
    if cks and best_ck is None:
        reasons.append("no complete checkpoint with a logged metric at or before its step")
    elif (
        best_ck is not None
        and best_ck.step is not None
        and s.best_step is not None
        and best_ck.step < s.best_step
    ):
        reasons.append(f"the best {s.metric} (step {s.best_step}) came after the best saved checkpoint (step {best_ck.step}): save more often")  # fmt: skip
    return PostRun(
        str(run.path), run.format, s.metric or chosen, mode, s.best, s.best_step, s.final,
        s.final_step, best_ck, cks, next_step, reasons,
        [f for f in report.findings if f.severity in ("error", "warning")],
    )  # fmt: skip
