"""Summaries of ``dcgmi dmon`` output: per entity, per field mean / median / min / max.

Timestamps: in a saved file tick ``k`` (one row per entity) is at ``k x interval_ms``; live,
a tick is at the wall-clock time its first row arrived. Warm-up is trimmed by time: ticks
before ``warmup_s`` seconds are dropped, whatever the interval.

Percent guard: a ratio field above :data:`RATIO_MAX` (1.05) or below 0 raises
:class:`InputError` (the file was rescaled to percent, or is not dmon output); values in
(1.0, 1.05] are kept as printed and counted in a warning. Means are exact: the rational sum of
the values divided by their count, rounded to a float once (:func:`exact_mean`); ``N/A`` and
blank cells are left out and counted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import InputError
from toolkit.profiling.instruments.dcgm_dmon import (
    DcgmiError,
    DmonText,
    code_from_exit_status,
    explain_code,
    read_dmon,
)
from toolkit.profiling.instruments.dcgm_fields import (
    RATIO_UNIT,
    TENSOR_ACTIVE,
    field_by_id,
    field_by_short_name,
)

RATIO_MAX = 1.05
"""Largest ratio accepted; above it the value is taken for percent and rejected."""

TIMESTAMPS_FROM_ROWS = "row index x interval"
TIMESTAMPS_FROM_CLOCK = "wall clock"

UNKNOWN_UNIT = "as printed"
"""Unit of a field missing from :data:`toolkit.profiling.instruments.dcgm_fields.FIELDS`."""


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FieldSummary:
    """One field of one entity over the ticks kept after warm-up.

    ``mean``, ``p50`` (median), ``min`` and ``max`` are in ``unit`` (``ratio 0..1`` for the
    profiling fields) and None when no tick had a value (``note`` says why). ``samples``
    counts the values used; ``not_available`` the ``N/A`` or blank cells left out.
    """

    field_id: int | None
    short_name: str
    long_name: str | None
    unit: str
    mean: float | None
    p50: float | None
    min: float | None
    max: float | None
    samples: int
    not_available: int
    note: str | None = None


@dataclass(frozen=True)
class EntitySummary:
    """All fields of one entity (``GPU 0``, ``GPU-I 1``, ...)."""

    entity: str
    fields: list[FieldSummary]


@dataclass(frozen=True)
class DcgmResult:
    """What one ``dcgmi dmon`` run measured, or why nothing was measured.

    ``available`` False means DCGM could not measure here; ``reason`` says why and
    ``entities`` is empty. ``ticks_total`` counts dmon ticks (one row per entity each),
    ``ticks_after_warmup`` those at or after ``warmup_s`` seconds; ``span_s`` is the time
    from the first to the last kept tick in seconds.
    """

    available: bool
    reason: str | None = None
    interval_ms: float | None = None
    warmup_s: float = 0.0
    timestamps: str = TIMESTAMPS_FROM_ROWS
    ticks_total: int = 0
    ticks_after_warmup: int = 0
    span_s: float | None = None
    stopped_by_signal: bool = False
    entities: list[EntitySummary] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    command: list[str] | None = None

    @property
    def measured(self) -> bool:
        """True when at least one field of one entity has a value after warm-up."""
        return self.available and any(f.samples for e in self.entities for f in e.fields)

    def field_summary(self, entity: str, field_id: int) -> FieldSummary | None:
        """The summary of ``field_id`` for ``entity`` (``"GPU 0"``), or None."""
        for summary in self.entities:
            if summary.entity == entity:
                return next((f for f in summary.fields if f.field_id == field_id), None)
        return None

    def tca_mean_ratio(self) -> dict[str, float | None]:
        """Mean tensor-pipe activity (field 1004, 0..1) per entity; None where not measured."""
        return {
            e.entity: next((f.mean for f in e.fields if f.field_id == TENSOR_ACTIVE), None)
            for e in self.entities
        }

    def unavailable_message(self) -> str:
        return f"DCGM unavailable: {self.reason}; TCA not measured"


def unavailable(reason: str, **kwargs: Any) -> DcgmResult:
    """A result that says why DCGM measured nothing."""
    return DcgmResult(available=False, reason=reason, **kwargs)


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Column:
    field_id: int | None
    short_name: str
    long_name: str | None
    unit: str

    @property
    def is_ratio(self) -> bool:
        return self.unit == RATIO_UNIT


def parse_dmon(
    text: str,
    interval_ms: float,
    warmup_s: float = 0.0,
    *,
    field_ids: Sequence[int] | None = None,
) -> DcgmResult:
    """Summarize saved ``dcgmi dmon`` output; tick ``k`` is at ``k x interval_ms`` ms.

    ``interval_ms`` is the ``-d`` the capture was taken with (milliseconds); ticks before
    ``warmup_s`` seconds are dropped. ``field_ids`` (the ``-e`` list, in order) names the
    columns when given; otherwise columns are matched by their short name. Output without
    data rows gives ``available=False`` with the reason (dcgmi's error when it printed one).
    Raises :class:`InputError` for malformed rows and for ratios above 1.05 (percent).
    """
    _check_timing(interval_ms, warmup_s)
    dmon = read_dmon(text.splitlines())
    return summarize(dmon, interval_ms, warmup_s, field_ids=field_ids)


def _check_timing(interval_ms: float, warmup_s: float) -> None:
    if not math.isfinite(interval_ms) or interval_ms <= 0:
        raise InputError(
            f"interval_ms must be a positive number of milliseconds, got {interval_ms}"
        )
    if not math.isfinite(warmup_s) or warmup_s < 0:
        raise InputError(f"warmup_s must be >= 0 seconds, got {warmup_s}")


def summarize(
    dmon: DmonText,
    interval_ms: float,
    warmup_s: float,
    *,
    field_ids: Sequence[int] | None = None,
    extra_errors: Sequence[DcgmiError] = (),
    returncode: int | None = None,
    command: list[str] | None = None,
) -> DcgmResult:
    """Turn parsed dmon output into a :class:`DcgmResult` (see :func:`parse_dmon`)."""
    errors = [*dmon.errors, *extra_errors]
    live = bool(dmon.rows) and dmon.rows[0].time_s is not None
    common: dict[str, Any] = {
        "interval_ms": interval_ms,
        "warmup_s": warmup_s,
        "timestamps": TIMESTAMPS_FROM_CLOCK if live else TIMESTAMPS_FROM_ROWS,
        "stopped_by_signal": dmon.stopped_by_signal,
        "command": command,
    }
    if not dmon.rows:
        return unavailable(_no_rows_reason(errors, returncode, dmon), **common)
    columns = _columns(dmon.columns, field_ids)
    warnings = _warnings(dmon, errors, columns)
    tick_times = _tick_times_s(dmon, interval_ms)
    kept = {tick for tick, t in tick_times.items() if t >= warmup_s - 1e-9}
    over_one = _check_ratios(dmon, columns)
    if over_one:
        warnings.append(
            f"{over_one} ratio value(s) in (1.0, {RATIO_MAX}] kept as printed (counter rounding)"
        )
    kept_times = sorted(tick_times[tick] for tick in kept)
    return DcgmResult(
        available=True,
        ticks_total=dmon.ticks,
        ticks_after_warmup=len(kept),
        span_s=(kept_times[-1] - kept_times[0]) if kept_times else None,
        entities=_entity_summaries(dmon, columns, kept, warmup_s),
        warnings=warnings,
        **common,
    )


def _no_rows_reason(errors: Sequence[DcgmiError], returncode: int | None, dmon: DmonText) -> str:
    if errors:
        reasons = list(dict.fromkeys(e.reason for e in errors))
        return f"{'; '.join(reasons)} [dcgmi: {errors[0].text}]"
    code = code_from_exit_status(returncode)
    if returncode not in (None, 0) and code is not None:
        return f"dcgmi exited with status {returncode}: " + explain_code(code, f"DCGM error {code}")
    if returncode not in (None, 0):
        return f"dcgmi exited with status {returncode} before printing any data row"
    if dmon.header_count:
        return "dcgmi printed its header but no data rows (stopped before the first tick?)"
    return (
        "no data rows in the dcgmi dmon output: expected an '#Entity' header followed by rows "
        "like 'GPU 0  0.912  0.850  0.701  0.300'"
    )


def _columns(names: Sequence[str], field_ids: Sequence[int] | None) -> list[_Column]:
    if field_ids is not None and len(field_ids) == len(names):
        return [_column_for_id(fid, name) for fid, name in zip(field_ids, names, strict=True)]
    return [_column_for_name(name) for name in names]


def _column_for_id(field_id: int, name: str) -> _Column:
    known = field_by_id(field_id)
    if known is None:
        return _Column(field_id, name, None, UNKNOWN_UNIT)
    return _Column(field_id, name, known.long_name, known.unit)


def _column_for_name(name: str) -> _Column:
    known = field_by_short_name(name)
    if known is None:
        return _Column(None, name, None, UNKNOWN_UNIT)
    return _Column(known.field_id, name, known.long_name, known.unit)


def _warnings(dmon: DmonText, errors: Sequence[DcgmiError], columns: list[_Column]) -> list[str]:
    warnings = [f"dcgmi reported: {e.text} ({e.reason})" for e in errors]
    if dmon.ignored_lines:
        line_no, text = dmon.ignored_lines[0]
        warnings.append(
            f"ignored {len(dmon.ignored_lines)} unrecognized line(s), first at line {line_no}: "
            f"{text[:80]!r}"
        )
    unknown = [c.short_name for c in columns if c.field_id is None]
    if unknown:
        warnings.append(f"column(s) {', '.join(unknown)} not in the DCGM field table; no field id")
    return warnings


def _tick_times_s(dmon: DmonText, interval_ms: float) -> dict[int, float]:
    """Seconds of each tick: its first row's arrival time, else ``tick x interval_ms``."""
    times: dict[int, float] = {}
    for row in dmon.rows:
        if row.tick not in times:
            times[row.tick] = (
                row.time_s if row.time_s is not None else row.tick * interval_ms / 1000.0
            )
    return times


def _check_ratios(dmon: DmonText, columns: list[_Column]) -> int:
    """Raise for a ratio outside 0..RATIO_MAX; return how many were in (1, RATIO_MAX]."""
    over_one = 0
    for row in dmon.rows:
        for column, value in zip(columns, row.values, strict=True):
            if value is None or not column.is_ratio:
                continue
            if value < 0 or value > RATIO_MAX:
                raise InputError(
                    f"line {row.line_no}: {column.short_name} = {value:g} is outside 0..1; "
                    "dcgmi dmon prints profiling fields as ratios (0.912 = 91.2 %), so this "
                    "looks rescaled to percent or is not dcgmi dmon output"
                )
            over_one += value > 1.0
    return over_one


def exact_mean(values: Sequence[float]) -> float:
    """Mean of ``values`` rounded once: exact sum / count (``fsum(values) / n`` rounds twice).

    Every float is an integer over a power of two, so the sum is taken exactly in integers on
    the finest power of two and divided once (Python's int / int is correctly rounded).
    """
    pairs = [float(v).as_integer_ratio() for v in values]
    shift = max(den.bit_length() - 1 for _, den in pairs)
    total = sum(num << (shift - den.bit_length() + 1) for num, den in pairs)
    return total / (len(pairs) << shift)


def _entity_summaries(
    dmon: DmonText, columns: list[_Column], kept: set[int], warmup_s: float
) -> list[EntitySummary]:
    per_entity: dict[str, list[list[float | None]]] = {}
    for row in dmon.rows:
        cells = per_entity.setdefault(row.entity, [[] for _ in columns])
        if row.tick in kept:
            for i, value in enumerate(row.values):
                cells[i].append(value)
    return [
        EntitySummary(
            entity=entity,
            fields=[_field_summary(c, cells[i], warmup_s) for i, c in enumerate(columns)],
        )
        for entity, cells in per_entity.items()
    ]


def _field_summary(column: _Column, cells: list[float | None], warmup_s: float) -> FieldSummary:
    values = [v for v in cells if v is not None]
    missing = len(cells) - len(values)
    note = None
    if not cells:
        note = f"no ticks after the {warmup_s:g} s warm-up"
    elif not values:
        note = f"all {missing} value(s) N/A or blank"
    return FieldSummary(
        field_id=column.field_id,
        short_name=column.short_name,
        long_name=column.long_name,
        unit=column.unit,
        mean=exact_mean(values) if values else None,
        p50=statistics.median(values) if values else None,
        min=min(values) if values else None,
        max=max(values) if values else None,
        samples=len(values),
        not_available=missing,
        note=note,
    )
