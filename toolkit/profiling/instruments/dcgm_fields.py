"""The DCGM field table: field id -> ``dcgmi dmon`` short name -> DCGM long name (tag).

One place for every field this toolkit knows. Ids, short names and tags are copied from DCGM's
``dcgmlib/dcgm_fields.h`` and ``dcgmlib/src/dcgm_fields.cpp`` (NVIDIA/DCGM 4.6.0); the short
name is the column header ``dcgmi dmon`` prints, the tag is the name ``dcgmi dmon -l`` lists and
dcgm-exporter uses (``DCGM_FI_PROF_PIPE_TENSOR_ACTIVE`` -> ``tensor_active``).

The profiling ("DCP") ratio fields are fractions of time or cycles in 0..1, printed by dmon
with three decimals (``0.701`` means 70.1 %), never percent.
"""

from __future__ import annotations

from dataclasses import dataclass

RATIO_UNIT = "ratio 0..1"
"""Unit of the profiling ratio fields: a fraction of time/cycles, 1.0 = always active."""

BYTES_PER_S_UNIT = "B/s"


@dataclass(frozen=True)
class DcgmField:
    """One DCGM field.

    ``short_name`` is the ``dcgmi dmon`` column header (at most 5-6 characters), ``long_name``
    DCGM's tag for the field. ``unit`` is :data:`RATIO_UNIT` for the 0..1 profiling ratios.
    """

    field_id: int
    short_name: str
    long_name: str
    unit: str
    description: str

    @property
    def is_ratio(self) -> bool:
        """True when dmon prints this field as a fraction in 0..1."""
        return self.unit == RATIO_UNIT


def _ratio(field_id: int, short: str, tag: str, description: str) -> DcgmField:
    return DcgmField(field_id, short, tag, RATIO_UNIT, description)


FIELDS: dict[int, DcgmField] = {
    f.field_id: f
    for f in (
        _ratio(1001, "GRACT", "gr_engine_active", "time the graphics/compute engine is active"),
        _ratio(1002, "SMACT", "sm_active", "cycles an SM has at least one warp assigned"),
        _ratio(1003, "SMOCC", "sm_occupancy", "resident warps per SM over the maximum"),
        _ratio(1004, "TENSO", "tensor_active", "cycles the tensor pipe is active (TCA)"),
        _ratio(1005, "DRAMA", "dram_active", "cycles device memory is sending or receiving"),
        _ratio(1006, "FP64A", "fp64_active", "cycles the FP64 pipe is active"),
        _ratio(1007, "FP32A", "fp32_active", "cycles the FP32 pipe is active"),
        _ratio(1008, "FP16A", "fp16_active", "cycles the FP16 pipe is active"),
        DcgmField(1009, "PCITX", "pcie_tx_bytes", BYTES_PER_S_UNIT, "PCIe bytes transmitted"),
        DcgmField(1010, "PCIRX", "pcie_rx_bytes", BYTES_PER_S_UNIT, "PCIe bytes received"),
        DcgmField(1011, "NVLTX", "nvlink_tx_bytes", BYTES_PER_S_UNIT, "NVLink bytes sent"),
        DcgmField(1012, "NVLRX", "nvlink_rx_bytes", BYTES_PER_S_UNIT, "NVLink bytes received"),
        _ratio(1013, "TIMMA", "tensor_imma_active", "cycles the integer tensor pipe is active"),
        _ratio(
            1014, "THMMA", "tensor_hmma_active", "cycles the half-precision tensor pipe is active"
        ),
        _ratio(1015, "TDFMA", "tensor_dfma_active", "cycles the FP64 tensor pipe is active"),
        _ratio(1016, "INTAC", "integer_active", "cycles the integer pipe is active"),
    )
}
"""Known fields by id. Fields not listed here still parse; they get no id or long name."""

GR_ENGINE_ACTIVE = 1001
SM_ACTIVE = 1002
TENSOR_ACTIVE = 1004
"""Tensor-core activity (TCA): ``DCGM_FI_PROF_PIPE_TENSOR_ACTIVE``, dmon column ``TENSO``."""
DRAM_ACTIVE = 1005

DEFAULT_FIELD_IDS: tuple[int, ...] = (GR_ENGINE_ACTIVE, SM_ACTIVE, TENSOR_ACTIVE, DRAM_ACTIVE)
"""What ``sample`` watches by default: GRACT, SMACT, TENSO, DRAMA."""

_BY_SHORT_NAME = {f.short_name: f for f in FIELDS.values()}


def field_by_id(field_id: int) -> DcgmField | None:
    """The known field with this id, or None."""
    return FIELDS.get(field_id)


def field_by_short_name(short_name: str) -> DcgmField | None:
    """The known field whose dmon column header is ``short_name`` (exact, case-sensitive)."""
    return _BY_SHORT_NAME.get(short_name)
