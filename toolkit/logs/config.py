"""Detector thresholds: every default lives here, with its unit.

Windows are counted in *log points* (entries of the metric), not optimizer steps, unless the
name says ``_steps``. Override any field from YAML (``--config FILE``)::

    spike_z: 8.0
    plateau_rel_change: 0.005
    model_params: 7.0e9
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from toolkit.cli import read_text
from toolkit.errors import InputError


@dataclass
class Thresholds:
    # NaN/Inf: no threshold; the first non-finite value of loss/val loss/grad norm/lr is an error.
    # -- loss spikes (robust z-score over a trailing window + Megatron-style factors)
    spike_window: int = 50  # points in the trailing window for the rolling median / MAD
    spike_z: float = 6.0  # robust z = (x - median) / (1.4826 * MAD) above this -> spike (warning)
    spike_min_rel: float = 0.05  # and x at least 5 % above the rolling median (noiseless curves)
    spike_factor_min: float = 2.0  # spike with x > 2 x lowest earlier loss -> error
    spike_factor_max: float = 10.0  # x > 10 x highest earlier loss -> error (Megatron's check)
    # -- gradient-norm spikes
    grad_spike_z: float = 6.0  # robust z for grad-norm spikes (warning)
    grad_spike_min_rel: float = 1.0  # and at least 2x the rolling median
    grad_lead_steps: int = 50  # steps: a grad spike this close before a loss spike is its trigger
    # -- plateau (train loss)
    plateau_window_frac: float = 0.1  # window = this fraction of the run's points ...
    plateau_min_points: int = 20  # ... but at least this many points
    plateau_rel_change: float = (
        0.01  # |relative change| (medians and fitted slope) below -> plateau
    )
    plateau_lr_decayed: float = 0.1  # lr < 10 % of its peak over the plateau -> info, not warning
    # -- divergence (sustained rise of the smoothed train loss)
    divergence_rel_rise: float = 0.25  # rolling median 25 % above its best so far ...
    divergence_min_points: int = 20  # ... for at least this many consecutive points -> error
    # -- overfitting (validation loss)
    overfit_rel_rise: float = 0.05  # last evals this far above the best val loss ...
    overfit_min_evals: int = (
        2  # ... for at least this many evals, while train loss falls -> warning
    )
    # -- learning-rate schedule
    lr_zero_frac: float = 1e-3  # lr below 0.1 % of its peak counts as zero
    lr_exhausted_tail_frac: float = 0.1  # lr ~ 0 for more than the last 10 % of the run -> warning
    warmup_start_frac: float = 0.5  # lr at the first logged step >= 50 % of peak = no warmup
    warmup_check_frac: float = 0.02  # only judged when lr is logged within the first 2 % of the run
    no_warmup_lr: float = 1e-3  # no warmup and peak lr >= this -> warning (model size unknown)
    model_params: float | None = None  # parameters; when given, decides "big model" instead
    big_model_params: float = 1e8  # no warmup on a model this big -> warning
    # -- throughput drops
    throughput_window: int = 20  # points in the trailing window for the throughput baseline
    throughput_drop_frac: float = 0.3  # below (1 - 0.3) x the rolling median -> drop
    throughput_min_points: int = 3  # consecutive low points before it is reported

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def load_thresholds(path: str | Path) -> Thresholds:
    """Thresholds from a YAML mapping; unknown keys and non-numbers are input errors."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path, "--config"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{where}: invalid YAML ({exc})") from None
    if data is None:
        return Thresholds()
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of threshold names to numbers")
    names = Thresholds.field_names()
    values = {}
    for key, value in data.items():
        if key not in names:
            raise InputError(f"{path}: unknown threshold {key!r}; known: {', '.join(names)}")
        if value is None and key == "model_params":
            values[key] = None
            continue
        if isinstance(value, str):  # PyYAML reads 1e9 (no exponent sign) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{path}: {key} must be a number, got {value!r}")
        default = getattr(Thresholds, key)
        values[key] = (
            int(value)
            if isinstance(default, int) and not isinstance(default, bool)
            else float(value)
        )
    return Thresholds(**values)
