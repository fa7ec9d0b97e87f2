"""Pass/fail thresholds for runtime validation, optionally read from a baseline YAML.

Example ``baseline.yaml`` (every key optional)::

    min_mfu: 0.30              # fraction 0..1 of dense peak FLOPS
    max_step_time_ms: 250      # median step time after warm-up
    min_tokens_per_sec: 50000  # tokens (or samples) per second, all devices
    max_grad_norm: 1000        # any step's global (pre-clip) gradient L2 norm above this fails
    max_clip_fraction: 0.9     # share of steps clip_grad_norm_ may clip (default: all but one)
    min_loss_drop: 0.01        # required relative drop of the loss, first vs last window

Without ``max_grad_norm`` the gradient norm is judged against the run itself (spikes over the
running median, growth from the first steps to the last); see ``gradients.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from toolkit.cli import read_text
from toolkit.errors import InputError


@dataclass
class Thresholds:
    min_mfu: float | None = None
    max_step_time_ms: float | None = None
    min_tokens_per_sec: float | None = None
    max_grad_norm: float | None = None
    max_clip_fraction: float | None = None
    min_loss_drop: float = 0.01


def load_thresholds(path: Path) -> Thresholds:
    """Read a baseline YAML; errors name the file and the field and what was expected."""
    try:
        data = yaml.safe_load(read_text(path, "--baseline"))
    except yaml.YAMLError as exc:
        raise InputError(f"--baseline {path}: not valid YAML: {exc}") from None
    if data is None:
        return Thresholds()
    if not isinstance(data, dict):
        raise InputError(f"--baseline {path}: expected a mapping of threshold: value")
    fields = {f.name for f in dataclasses.fields(Thresholds)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise InputError(
            f"--baseline {path}: unknown field(s) {unknown}; expected {sorted(fields)}"
        )
    values = {}
    for key, value in data.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InputError(f"--baseline {path}: field '{key}' must be a number, got {value!r}")
        if key == "min_mfu" and not 0 < value <= 1:
            raise InputError(
                f"--baseline {path}: field 'min_mfu' is a fraction in (0, 1], got {value}"
            )
        if key == "max_clip_fraction" and not 0 <= value <= 1:
            raise InputError(
                f"--baseline {path}: field 'max_clip_fraction' is a fraction in [0, 1], got {value}"
            )
        if key not in ("min_loss_drop", "max_clip_fraction") and value <= 0:
            raise InputError(f"--baseline {path}: field '{key}' must be > 0, got {value}")
        values[key] = float(value)
    return Thresholds(**values)
