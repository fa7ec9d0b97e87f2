"""Rank several runs by one metric: best and final values, the winner, curves side by side.

Used by ``runs sweep show`` (a sweep's runs) and ``logs postrun`` (checkpoints of one run).
A metric is found by its exact name, then by its normalised name (``val/loss`` ==
``val_loss``), then by role (``val_loss`` finds ``eval_loss``). ``mode`` is ``min`` or ``max``;
``by`` is ``best`` (the best value anywhere on the curve: the best checkpoint) or ``final``
(the last finite value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.logs.series import ROLES, Run, Series, canonical_role, normalize_name

MODES = ("min", "max")
BY = ("best", "final")


@dataclass
class Score:
    """One run's numbers for the metric; ``error`` says why there are none."""

    label: str
    path: str | None
    metric: str | None = None  # the series name that matched
    best: float | None = None
    best_step: int | None = None
    final: float | None = None
    final_step: int | None = None
    points: int = 0
    non_finite: int = 0
    error: str = ""


def find_series(run: Run, metric: str) -> Series | None:
    """The series ``metric`` names in ``run``: exact, normalised, then by role."""
    if metric in run.series:
        return run.series[metric]
    norm = normalize_name(metric)
    for name, series in run.series.items():
        if normalize_name(name) == norm:
            return series
    role = metric if metric in ROLES else canonical_role(metric)
    return run.role(role) if role else None


def default_metric(runs: list[Run]) -> str:
    """``val_loss`` when any run logs one, else ``train_loss``."""
    return "val_loss" if any(r.role("val_loss") is not None for r in runs) else "train_loss"


def score(label: str, run: Run, metric: str, mode: str) -> Score:
    out = Score(label, str(run.path))
    series = find_series(run, metric)
    if series is None:
        out.error = f"no metric {metric!r} (has: {', '.join(list(run.series)[:8])})"
        return out
    ok = np.isfinite(series.values)
    out.metric, out.points, out.non_finite = series.name, len(series), int((~ok).sum())
    if not ok.any():
        out.error = f"{series.name}: no finite value"
        return out
    steps, values = series.steps[ok], series.values[ok]
    i = int(np.argmin(values) if mode == "min" else np.argmax(values))
    out.best, out.best_step = float(values[i]), int(steps[i])
    out.final, out.final_step = float(values[-1]), int(steps[-1])
    return out


def winner(scores: list[Score], mode: str, by: str) -> Score | None:
    """The best score by ``by`` (best or final value) in direction ``mode``; None if none."""
    valid = [s for s in scores if getattr(s, by) is not None]
    if not valid:
        return None
    pick = min if mode == "min" else max
    return pick(valid, key=lambda s: getattr(s, by))
