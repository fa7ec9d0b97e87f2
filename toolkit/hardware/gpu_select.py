"""Pick free GPUs on a shared machine for ``CUDA_VISIBLE_DEVICES``, from NVML readings.

A GPU is *free* when, over every sample taken, its memory used is at most ``max_mem_used_pct``
percent of its total and its GPU utilization is at most ``max_util_pct`` percent (both 0..100).
Readings are the worst (maximum) over ``samples`` NVML reads ``interval_s`` seconds apart, so a
GPU that is busy in any sample is not free. A GPU whose memory or utilization NVML cannot read is
not free either (the reason says which call failed).

Indices are NVML indices, which follow PCI bus order. CUDA numbers GPUs fastest-first unless
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` is set, so :func:`cuda_env_prefix` sets both variables; UUIDs
(``GPU-...``) are order-proof and accepted by ``CUDA_VISIBLE_DEVICES`` too.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import UnavailableError
from toolkit.hardware.detect import PYNVML_MISSING, nvml_reason

DEFAULT_MAX_MEM_USED_PCT = 10.0
DEFAULT_MAX_UTIL_PCT = 10.0


@dataclass(frozen=True)
class GpuLoad:
    """One GPU's load. Percentages are 0..100, worst over the samples; ``None`` = unreadable."""

    index: int
    name: str
    uuid: str | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    mem_used_pct: float | None
    util_pct: float | None
    free: bool
    reason: str


@dataclass
class Selection:
    """Result of :func:`select_free_gpus`. ``chosen`` are NVML indices in ascending order."""

    requested: int
    chosen: list[int]
    gpus: list[GpuLoad]
    max_mem_used_pct: float
    max_util_pct: float
    samples: int
    notes: list[str] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        """True when at least ``requested`` GPUs are free."""
        return len(self.chosen) >= self.requested

    @property
    def value(self) -> str:
        """The ``CUDA_VISIBLE_DEVICES`` value (comma-separated indices), '' when not enough."""
        return ",".join(str(i) for i in self.chosen) if self.enough else ""

    @property
    def uuid_value(self) -> str:
        """As :attr:`value` with GPU UUIDs instead of indices (order-proof)."""
        by_index = {g.index: g for g in self.gpus}
        return ",".join(by_index[i].uuid or str(i) for i in self.chosen) if self.enough else ""


def cuda_env_prefix(value: str) -> str:
    """``CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=<value>``: NVML indices mean the
    same GPUs to CUDA only in PCI bus order."""
    return f"CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={value}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_gpu(pynvml: Any, index: int, samples: int, interval_s: float) -> dict[str, Any]:
    """Worst memory used (bytes) and utilization (%) of one GPU over ``samples`` reads."""
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    out: dict[str, Any] = {"name": f"GPU {index}", "uuid": None, "errors": []}
    try:
        out["name"] = _text(pynvml.nvmlDeviceGetName(handle))
    except pynvml.NVMLError:
        pass
    try:
        out["uuid"] = _text(pynvml.nvmlDeviceGetUUID(handle))
    except pynvml.NVMLError:
        pass
    used: list[int] = []
    util: list[int] = []
    total = None
    for sample in range(samples):
        if sample:
            time.sleep(max(0.0, interval_s))
        try:
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            total = int(memory.total)
            used.append(int(memory.used))
        except pynvml.NVMLError as exc:
            out["errors"].append(f"memory unreadable: {nvml_reason(exc)}")
            break
        try:
            util.append(int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        except pynvml.NVMLError as exc:
            out["errors"].append(f"utilization unreadable: {nvml_reason(exc)}")
            break
    out["memory_total"] = total
    out["memory_used"] = max(used) if used and not out["errors"] else None
    out["util"] = max(util) if util and not out["errors"] else None
    return out


def _judge(
    index: int, raw: dict[str, Any], max_mem_used_pct: float, max_util_pct: float
) -> GpuLoad:
    used, total, util = raw["memory_used"], raw["memory_total"], raw["util"]
    mem_pct = None if used is None or not total else 100.0 * used / total
    reasons = list(raw["errors"])
    if mem_pct is not None and mem_pct > max_mem_used_pct:
        reasons.append(f"memory used {mem_pct:.1f}% > {max_mem_used_pct:g}%")
    if util is not None and util > max_util_pct:
        reasons.append(f"utilization {util}% > {max_util_pct:g}%")
    free = not reasons
    return GpuLoad(
        index=index,
        name=raw["name"],
        uuid=raw["uuid"],
        memory_used_bytes=used,
        memory_total_bytes=total,
        mem_used_pct=mem_pct,
        util_pct=None if util is None else float(util),
        free=free,
        reason="free" if free else "; ".join(reasons),
    )


def _import_pynvml() -> Any:
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise UnavailableError(f"NVML unavailable: {PYNVML_MISSING} ({exc})") from exc


def select_free_gpus(
    count: int = 1,
    max_mem_used_pct: float = DEFAULT_MAX_MEM_USED_PCT,
    max_util_pct: float = DEFAULT_MAX_UTIL_PCT,
    samples: int = 3,
    interval_s: float = 0.2,
    import_nvml: Callable[[], Any] = _import_pynvml,
) -> Selection:
    """Read every GPU's load from NVML and choose ``count`` free ones.

    Among free GPUs the least loaded win (memory used %, then utilization %, then index); the
    chosen indices are returned ascending. ``samples`` reads per GPU, ``interval_s`` seconds apart.
    Raises :class:`UnavailableError` when NVML cannot be used at all (no pynvml, no driver).
    """
    pynvml = import_nvml()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise UnavailableError(f"NVML unavailable: {nvml_reason(exc)}") from exc
    gpus: list[GpuLoad] = []
    notes: list[str] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                raw = _read_gpu(pynvml, index, max(1, samples), interval_s)
            except pynvml.NVMLError as exc:
                raw = {
                    "name": f"GPU {index}",
                    "uuid": None,
                    "memory_total": None,
                    "memory_used": None,
                    "util": None,
                    "errors": [f"NVML could not open it: {nvml_reason(exc)}"],
                }
            gpus.append(_judge(index, raw, max_mem_used_pct, max_util_pct))
    except pynvml.NVMLError as exc:
        raise UnavailableError(
            f"NVML unavailable: listing GPUs failed: {nvml_reason(exc)}"
        ) from exc
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    if not gpus:
        notes.append("NVML works but reports no GPUs")
    free = sorted(
        (g for g in gpus if g.free),
        key=lambda g: (g.mem_used_pct or 0.0, g.util_pct or 0.0, g.index),
    )
    chosen = sorted(g.index for g in free[:count])
    return Selection(
        requested=count,
        chosen=chosen,
        gpus=gpus,
        max_mem_used_pct=max_mem_used_pct,
        max_util_pct=max_util_pct,
        samples=max(1, samples),
        notes=notes,
    )
