"""Metrics from a training log, and alerts against a baseline run.

A deliberately small parser (``step=N key=value ...`` lines) with one seam:
:func:`compare` has the signature of ``toolkit.logs.compare(run, baseline, tolerance)`` so the
log-analysis package can replace it once it lands (swap the body of :func:`compare` and of
:func:`parse_metrics`; callers do not change).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from toolkit.errors import InputError

KV_RE = re.compile(
    r"\b([A-Za-z_][\w./-]*)\s*[=:]\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))\b", re.IGNORECASE
)

Metrics = dict[str, dict[int, float]]


@dataclass
class Alert:
    """One metric at one step off the baseline by more than the tolerance (relative)."""

    metric: str
    step: int
    value: float
    baseline: float
    rel_diff: float
    tolerance: float


def parse_metrics(text: str) -> Metrics:
    """``{metric: {step: value}}`` from lines holding ``step=N`` and other ``key=value`` pairs."""
    out: Metrics = {}
    for line in text.splitlines():
        pairs = KV_RE.findall(line)
        values = {k.lower(): v for k, v in pairs}
        if "step" not in values:
            continue
        try:
            step = int(float(values.pop("step")))
        except ValueError:
            continue
        for key, raw in values.items():
            out.setdefault(key, {})[step] = float(raw)
    return out


def load_baseline(path: Path) -> Metrics:
    """A baseline: JSON/YAML ``{metric: {step: value}}`` (or ``[[step, value], ...]``), or a log."""
    expected = "JSON/YAML {metric: {step: value}} or {metric: [[step, value], ...]}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--baseline: cannot read {path}: {exc.strerror}") from None
    if b"\0" in raw[:8192]:
        raise InputError(
            f"--baseline: {path} is a binary file; expected a training log or {expected}"
        )
    text = raw.decode("utf-8", errors="replace")
    if path.suffix not in (".json", ".yaml", ".yml"):
        return parse_metrics(text)
    try:
        data = yaml.safe_load(text) if path.suffix != ".json" else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(
            f"--baseline: {path} is not valid {path.suffix[1:].upper()}: {str(exc).splitlines()[0]}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"--baseline: {path} holds a {type(data).__name__}; expected {expected}")
    out: Metrics = {}
    for metric, series in data.items():
        try:
            items = series.items() if isinstance(series, dict) else series
            out[str(metric)] = {int(s): float(v) for s, v in items}
        except (TypeError, ValueError):
            raise InputError(
                f"--baseline: {path}: metric {metric!r} is not a step -> number mapping; expected {expected}"
            ) from None
    return out


def compare(run: Metrics, baseline: Metrics, tolerance: float) -> list[Alert]:
    """Alerts for every metric and step present in both where ``|run-base|/|base| > tolerance``.

    A non-finite run value against a finite baseline always alerts.
    """
    alerts: list[Alert] = []
    for metric, series in run.items():
        base = baseline.get(metric)
        if not base:
            continue
        for step, value in sorted(series.items()):
            if step not in base:
                continue
            ref = base[step]
            if not math.isfinite(value):
                rel = math.inf
            else:
                rel = abs(value - ref) / max(abs(ref), 1e-12)
            if rel > tolerance:
                alerts.append(Alert(metric, step, value, ref, rel, tolerance))
    return alerts
