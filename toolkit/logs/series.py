"""Columnar metric series, the run container, and metric-name normalisation.

Every reader yields a :class:`Run`: one :class:`Series` per metric (numpy ``steps`` int64 and
``values`` float64, sorted by step, one value per step) plus warnings naming skipped lines.
Roles (``train_loss``, ``val_loss``, ``lr``, ``grad_norm``, ``throughput``) map the many
spellings used by trainers onto one name; the original metric name is always kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROLES = ("train_loss", "val_loss", "lr", "grad_norm", "throughput")

_STEP_NAMES = ("step", "global_step", "iteration", "iter", "_step", "trainer/global_step")


@dataclass
class Series:
    """One metric: ``steps`` (optimizer steps, int64) and ``values`` (float64, may hold NaN/Inf)."""

    name: str
    steps: np.ndarray
    values: np.ndarray
    role: str | None = None
    # derived arrays (finite subset, rolling medians) computed once per analysis; not data
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.steps.size)


@dataclass
class Run:
    """A parsed training log: metrics by original name, the format read, and reader warnings."""

    path: Path
    format: str
    series: dict[str, Series] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)  # role -> metric name

    def role(self, role: str) -> Series | None:
        name = self.roles.get(role)
        return self.series.get(name) if name else None


def normalize_name(name: str) -> str:
    """Lower-case, separators to ``_``, trailing ``_step``/``_epoch`` (Lightning) removed."""
    text = re.sub(r"[\s/\-.:]+", "_", name.strip().lower()).strip("_")
    return re.sub(r"_(step|epoch)$", "", text)


_ROLE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "val_loss",
        re.compile(
            r"^(eval|val|valid|validation|test|dev)_?(lm_)?loss$|^loss_(eval|val|valid|validation)$"
        ),
    ),
    (
        "train_loss",
        re.compile(
            r"^(train_|training_|train_lm_|lm_)?loss$|^loss_train$|^lm_loss$|^train_lm_loss$"
        ),
    ),
    (
        "lr",
        re.compile(
            r"^(train_)?(lr|learning_rate)(_.*)?$|^lr_(adam|adamw|sgd)\w*$|^optimizer_lr\w*$"
        ),
    ),
    (
        "grad_norm",
        re.compile(
            r"^(train_)?(grad_norm|gradient_norm|global_grad_norm|grad_norm_total|total_grad_norm|gnorm)$"
        ),
    ),
    (
        "throughput",
        re.compile(
            r"^(train_)?(throughput\w*|tokens_per_s(ec(ond)?)?|tok_s|tokens_s|samples_per_s(ec(ond)?)?|it_s|steps_per_s(ec(ond)?)?|tflops\w*)$"
        ),
    ),
]


def canonical_role(name: str) -> str | None:
    """The role of a metric name (``train/loss`` -> ``train_loss``), or None."""
    norm = normalize_name(name)
    if norm.startswith(("eval_", "val_", "test_")) and not norm.endswith("loss"):
        return None  # eval_samples_per_second, eval_runtime, ...: not the training curves
    for role, pattern in _ROLE_PATTERNS:
        if pattern.match(norm):
            return role
    return None


def make_series(name: str, steps: np.ndarray, values: np.ndarray) -> tuple[Series, int]:
    """Sort by step (stable) and keep the last value written per step.

    Returns the series and how many duplicate steps were dropped (a resumed run rewrites steps).
    """
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if steps.size > 1 and np.any(steps[1:] < steps[:-1]):
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
    dropped = 0
    if steps.size > 1:
        keep = np.empty(steps.size, dtype=bool)
        keep[-1] = True
        np.not_equal(steps[1:], steps[:-1], out=keep[:-1])  # last of each equal-step run
        dropped = int(steps.size - keep.sum())
        if dropped:
            steps, values = steps[keep], values[keep]
    return Series(name, steps, values, canonical_role(name)), dropped


def build_run(
    path: Path, fmt: str, columns: dict[str, tuple[np.ndarray, np.ndarray]], warnings: list[str]
) -> Run:
    """Assemble a :class:`Run` from ``{name: (steps, values)}`` and assign roles.

    When several metrics map to one role, the one with the most points wins (HF's final
    ``train_loss`` summary entry loses to the per-step ``loss``).
    """
    run = Run(path=path, format=fmt, warnings=warnings)
    for name, (steps, values) in columns.items():
        if name in _STEP_NAMES or len(steps) == 0:
            continue
        series, dropped = make_series(name, steps, values)
        if dropped:
            warnings.append(
                f"{path}: metric {name!r}: {dropped} repeated step(s); kept the last value written (resumed run?)"
            )
        run.series[name] = series
    for role in ROLES:
        candidates = [s for s in run.series.values() if s.role == role]
        if candidates:
            best = max(candidates, key=lambda s: (len(s), -len(s.name)))
            run.roles[role] = best.name
    return run


def step_key(names: list[str]) -> str | None:
    """The column that holds the step, if any."""
    lowered = {n.lower(): n for n in names}
    for candidate in _STEP_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    return None
