"""NVML sampler: per-GPU utilization, memory, power, clocks, temperature and PCIe in the background.

``python -m toolkit.profiling.nvml_sampler sample`` from a shell, or in Python::

    with NvmlSampler(interval_s=0.1, warmup_s=5.0) as sampler:
        train()
    result = sampler.result          # NvmlResult; result.available is False without NVML

A daemon thread wakes every ``interval_s`` seconds (default 0.1 s) and reads every selected GPU
through ``pynvml`` (nvidia-ml-py). Handles, names and the max SM clock are looked up once at
:meth:`NvmlSampler.start`; a sweep is a few NVML calls per GPU appended to ``array('d')`` buffers,
and its wall and CPU cost are measured and reported.

Units are in the metric names (see :data:`METRICS`). A reading NVML refuses for good on a GPU
(not supported, no permission, function missing from the driver) is recorded once with the reason
and never retried, and never reported as 0. A GPU that is lost mid-run keeps its samples up to
that moment; the other GPUs keep being sampled. When NVML cannot start at all the result is
``NvmlResult(available=False, reason="NVML unavailable: ...")`` with no numbers.

GPU indices are NVML indices (PCI bus order); ``CUDA_VISIBLE_DEVICES`` does not apply to them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from types import ModuleType
from typing import Any

import numpy as np

from toolkit import cli
from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    fmt_num,
    positive_float,
    print_json,
    render_table,
    to_jsonable,
)
from toolkit.errors import InputError
from toolkit.hardware.detect import PYNVML_MISSING, nvml_reason

PROG = "python -m toolkit.profiling.nvml_sampler"

DEFAULT_INTERVAL_S = 0.1
MIN_INTERVAL_S = 0.001

#: Every metric a GPU can report, in display order, with its unit and NVML source.
METRICS: dict[str, str] = {
    "util_gpu_pct": "% of NVML's sample period (1/6 s to 1 s) in which a kernel ran",
    "util_memory_pct": "% of NVML's sample period in which device memory was read or written",
    "memory_used_bytes": "device memory in use, bytes",
    "memory_used_pct": "device memory in use, % of total",
    "power_w": "board power draw, W (NVML reports mW; 1 s average on Ampere+ except A100)",
    "sm_clock_mhz": "current SM clock, MHz",
    "sm_clock_ratio": "current / max SM clock (1.0 = at max), dimensionless",
    "temperature_c": "GPU die temperature, degrees C",
    "pcie_tx_kbps": "PCIe transmit, KB/s (kilobytes/s as NVML reports; a 20 ms window per read)",
    "pcie_rx_kbps": "PCIe receive, KB/s (kilobytes/s as NVML reports; a 20 ms window per read)",
}

#: Raw bitmask series name for clock event ("throttle") reasons; summarised as % of samples.
CLOCK_EVENT_REASONS_SERIES = "clock_event_reasons"

#: NVML clock event reason bits (``nvmlClocksEventReason*``, same bits as the older
#: ``nvmlClocksThrottleReason*``) and the names used in ``clock_event_reasons_pct``.
CLOCK_EVENT_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)
_KNOWN_REASON_BITS = sum(bit for bit, _ in CLOCK_EVENT_REASONS)

# NVML errors after which a reading is never retried on that GPU, and errors that end the GPU.
_PERMANENT_ERRORS = frozenset(
    {
        "NVMLError_NotSupported",
        "NVMLError_NoPermission",
        "NVMLError_FunctionNotFound",
        "NVMLError_InvalidArgument",
    }
)
_GPU_GONE_ERRORS = frozenset(
    {"NVMLError_GpuIsLost", "NVMLError_GpuNotFound", "NVMLError_ResetRequired"}
)


# ----------------------------------------------------------------------------- results


@dataclass
class Series:
    """Raw samples of one metric on one GPU: ``times_s`` (seconds since start) and ``values``."""

    times_s: array = field(default_factory=lambda: array("d"))
    values: array = field(default_factory=lambda: array("d"))

    def __len__(self) -> int:
        return len(self.values)

    def window(self, start_s: float) -> np.ndarray:
        """Values whose timestamp is at or after ``start_s`` seconds (a numpy copy)."""
        if not self.values:
            return np.empty(0)
        times = np.frombuffer(self.times_s, dtype=np.float64)
        return np.frombuffer(self.values, dtype=np.float64)[times >= start_s].copy()


@dataclass(frozen=True)
class MetricSummary:
    """Mean, median, min and max of one metric over the window, in the metric's unit."""

    mean: float
    p50: float
    min: float
    max: float
    count: int


@dataclass
class GpuResult:
    """One GPU over the sampling window.

    ``metrics`` holds only metrics with at least one sample in the window; every other metric
    is in ``not_measured`` with the reason. ``unsupported`` is the subset NVML refused for good
    (never retried; in JSON only through ``not_measured``). ``read_errors``: readings that
    failed now and then (still retried), with the count and the first reason. ``clock_event_reasons_pct``: % of samples in the window during which each
    clock event ("throttle") reason was active. ``lost_at_s``: seconds since start at which NVML
    said the GPU was lost; samples before it are kept. ``samples``: raw series (not in JSON
    unless asked).
    """

    index: int
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None
    max_sm_clock_mhz: float | None = None
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    clock_event_reasons_pct: dict[str, float] = field(default_factory=dict)
    not_measured: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    read_errors: dict[str, str] = field(default_factory=dict)
    lost_at_s: float | None = None
    lost_reason: str | None = None
    samples: dict[str, Series] = field(default_factory=dict, repr=False)

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        """JSON-ready dict; raw ``samples`` (lists of ``[t_s, value]``) only when asked."""
        out = {
            f.name: to_jsonable(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("samples", "unsupported")
        }
        if samples:
            out["samples"] = {
                name: [[t, v] for t, v in zip(s.times_s, s.values, strict=True)]
                for name, s in self.samples.items()
            }
        return out


@dataclass
class NvmlResult:
    """What the sampler measured, or ``available=False`` and the reason (and no numbers).

    ``sweeps``: sampling passes over all GPUs; ``late_sweeps``: passes that ended after the next
    one was due. ``sweep_ms_mean`` / ``sweep_ms_max``: wall milliseconds per pass (NVML calls that
    wait, such as PCIe's 20 ms windows, count here). ``sweep_cpu_ms_mean``: CPU milliseconds the
    sampler thread used per pass. ``overhead_pct``: sampler thread CPU time / elapsed time, in %
    of one core.
    """

    available: bool
    reason: str = ""
    interval_s: float | None = None
    warmup_s: float | None = None
    duration_s: float | None = None
    sweeps: int | None = None
    late_sweeps: int | None = None
    sweep_ms_mean: float | None = None
    sweep_ms_max: float | None = None
    sweep_cpu_ms_mean: float | None = None
    overhead_pct: float | None = None
    gpus: list[GpuResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def gpu(self, index: int) -> GpuResult:
        """The result for NVML GPU ``index``; ``KeyError`` if it was not sampled."""
        for gpu in self.gpus:
            if gpu.index == index:
                return gpu
        raise KeyError(f"GPU {index} was not sampled (sampled: {[g.index for g in self.gpus]})")

    def summarized(self, warmup_s: float) -> NvmlResult:
        """The same samples summarised again, skipping the first ``warmup_s`` seconds."""
        if warmup_s < 0:
            raise InputError(f"warmup_s must be >= 0 seconds, got {warmup_s}")
        gpus = [summarize_gpu(g, warmup_s) for g in self.gpus]
        return replace(self, warmup_s=warmup_s, gpus=gpus)

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        """JSON-ready dict; per-GPU raw samples only with ``samples=True``."""
        out = {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "gpus"}
        out["gpus"] = [g.to_dict(samples) for g in self.gpus]
        return out


def summarize(values: np.ndarray) -> MetricSummary:
    """Mean / median / min / max / count of a non-empty array."""
    return MetricSummary(
        mean=float(values.mean()),
        p50=float(np.median(values)),
        min=float(values.min()),
        max=float(values.max()),
        count=int(values.size),
    )


def _reasons_pct(masks: np.ndarray) -> dict[str, float]:
    """% of samples in which each clock event reason bit was set (``other``: unknown bits)."""
    bits = masks.astype(np.uint64)
    out = {name: 100.0 * float(np.mean((bits & bit) != 0)) for bit, name in CLOCK_EVENT_REASONS}
    other = float(np.mean((bits & ~np.uint64(_KNOWN_REASON_BITS)) != 0))
    if other:
        out["other"] = 100.0 * other
    return out


def _no_window_reason(gpu: GpuResult, name: str, total: int, warmup_s: float) -> str:
    if total:
        return f"no samples after the {warmup_s:g} s warm-up ({total} before it)"
    if name in gpu.read_errors:
        return f"every read failed: {gpu.read_errors[name]}"
    if gpu.lost_at_s is not None:
        return f"GPU lost before the first sample: {gpu.lost_reason}"
    return "no samples taken (the run ended before the first sweep)"


def summarize_gpu(gpu: GpuResult, warmup_s: float) -> GpuResult:
    """``gpu`` with ``metrics``, ``clock_event_reasons_pct`` and ``not_measured`` recomputed
    from its raw samples, counting only samples at or after ``warmup_s`` seconds."""
    metrics: dict[str, MetricSummary] = {}
    reasons: dict[str, float] = {}
    missing: dict[str, str] = {}
    for name, series in gpu.samples.items():
        values = series.window(warmup_s)
        if not values.size:
            if name not in gpu.unsupported:
                missing[name] = _no_window_reason(gpu, name, len(series), warmup_s)
        elif name == CLOCK_EVENT_REASONS_SERIES:
            reasons = _reasons_pct(values)
        else:
            metrics[name] = summarize(values)
    for name, why in gpu.unsupported.items():
        if name not in metrics and not (name == CLOCK_EVENT_REASONS_SERIES and reasons):
            missing[name] = why
    order = [*METRICS, CLOCK_EVENT_REASONS_SERIES]
    return replace(
        gpu,
        metrics={name: metrics[name] for name in METRICS if name in metrics},
        clock_event_reasons_pct=reasons,
        not_measured={name: missing[name] for name in order if name in missing},
    )


# ----------------------------------------------------------------------------- sampling state


@dataclass
class _Reader:
    """One NVML call per sweep yielding one value per series in ``series``.

    ``fallback`` replaces ``read`` once if the driver lacks the function (FunctionNotFound).
    ``errors`` / ``first_error``: transient failures (the reading is still retried).
    """

    names: tuple[str, ...]
    series: tuple[Series, ...]
    read: Callable[[Any], tuple[float, ...]]
    fallback: Callable[[Any], tuple[float, ...]] | None = None
    errors: int = 0
    first_error: str = ""


@dataclass
class _Gpu:
    """Per-GPU state, written only by the sampling thread until it is joined.

    ``readers``: still read every sweep; ``all_readers``: every reader built, for error counts.
    """

    result: GpuResult
    handle: Any
    readers: list[_Reader] = field(default_factory=list)
    all_readers: list[_Reader] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _once(call: Callable[[], Any], nvml: ModuleType) -> tuple[Any, str]:
    """``(value, "")`` or ``(None, reason)`` for an NVML call made once at start."""
    try:
        return call(), ""
    except nvml.NVMLError as exc:
        return None, nvml_reason(exc)


def _available(nvml: ModuleType, *names: str) -> list[Callable[..., Any]]:
    """The functions among ``names`` that this pynvml version defines, in order."""
    return [getattr(nvml, n) for n in names if hasattr(nvml, n)]


def _add(gpu: _Gpu, names: tuple[str, ...], reads: Sequence[Callable[[Any], tuple]]) -> None:
    """Add a reader for ``names`` using ``reads[0]``, with ``reads[1]`` as its fallback."""
    if not reads:
        return
    series = tuple(gpu.result.samples.setdefault(n, Series()) for n in names)
    reader = _Reader(names, series, reads[0], reads[1] if len(reads) > 1 else None)
    gpu.readers.append(reader)
    gpu.all_readers.append(reader)


def _build_readers(nvml: ModuleType, gpu: _Gpu, pcie: bool, clock_reasons: bool) -> None:
    """The per-sweep readers of one GPU: closures over pynvml functions and constants, so a
    sweep does no attribute lookups on the module."""
    res = gpu.result
    get_util, get_mem = nvml.nvmlDeviceGetUtilizationRates, nvml.nvmlDeviceGetMemoryInfo
    get_power, get_clock = nvml.nvmlDeviceGetPowerUsage, nvml.nvmlDeviceGetClockInfo
    sm, sensor = nvml.NVML_CLOCK_SM, nvml.NVML_TEMPERATURE_GPU

    def util(h: Any) -> tuple[float, float]:
        u = get_util(h)
        return (u.gpu, u.memory)

    def memory(h: Any) -> tuple[float, float]:
        m = get_mem(h)
        res.memory_total_bytes = m.total
        return (m.used, 100.0 * m.used / m.total if m.total else float("nan"))

    def clock_and_ratio(h: Any) -> tuple[float, float]:
        mhz = get_clock(h, sm)
        return (mhz, mhz / max_mhz)

    _add(gpu, ("util_gpu_pct", "util_memory_pct"), [util])
    _add(gpu, ("memory_used_bytes", "memory_used_pct"), [memory])
    _add(gpu, ("power_w",), [lambda h: (get_power(h) / 1000.0,)])
    max_mhz = res.max_sm_clock_mhz
    if max_mhz:
        _add(gpu, ("sm_clock_mhz", "sm_clock_ratio"), [clock_and_ratio])
    else:
        _add(gpu, ("sm_clock_mhz",), [lambda h: (get_clock(h, sm),)])
    temps = _available(nvml, "nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature")
    _add(gpu, ("temperature_c",), [_bind(f, sensor) for f in temps])
    if pcie:
        get_pcie = nvml.nvmlDeviceGetPcieThroughput
        _add(gpu, ("pcie_tx_kbps",), [_bind(get_pcie, nvml.NVML_PCIE_UTIL_TX_BYTES)])
        _add(gpu, ("pcie_rx_kbps",), [_bind(get_pcie, nvml.NVML_PCIE_UTIL_RX_BYTES)])
    if clock_reasons:
        masks = _available(
            nvml,
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetCurrentClocksThrottleReasons",
        )
        _add(gpu, (CLOCK_EVENT_REASONS_SERIES,), [_bind(f) for f in masks])


def _bind(function: Callable[..., float], *args: Any) -> Callable[[Any], tuple[float]]:
    """``handle -> (function(handle, *args),)``."""
    return lambda handle: (function(handle, *args),)


# ----------------------------------------------------------------------------- the sampler


class NvmlSampler:
    """Background NVML sampler; one-shot: ``start()``, then ``stop() -> NvmlResult``.

    ``interval_s``: seconds between sweep starts (default 0.1, at least 0.001). ``gpus``: NVML
    indices to sample (default all). ``warmup_s``: seconds at the start left out of the
    summaries (the raw samples keep them). ``pcie``: read PCIe TX/RX; each read waits ~20 ms
    inside NVML, so a sweep takes at least 40 ms per GPU (turn off for short intervals on many
    GPUs). ``clock_reasons``: record clock event ("throttle") reasons. Also a context manager;
    ``stop()`` is idempotent.
    """

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        gpus: Sequence[int] | None = None,
        warmup_s: float = 0.0,
        pcie: bool = True,
        clock_reasons: bool = True,
    ) -> None:
        if not interval_s >= MIN_INTERVAL_S:
            raise InputError(
                f"sampling interval must be at least {MIN_INTERVAL_S * 1000:g} ms, "
                f"got {interval_s * 1000:g} ms"
            )
        if not warmup_s >= 0:
            raise InputError(f"warm-up must be >= 0 seconds, got {warmup_s}")
        self.interval_s = float(interval_s)
        self.warmup_s = float(warmup_s)
        self._wanted = None if gpus is None else list(dict.fromkeys(int(i) for i in gpus))
        self._pcie = pcie
        self._clock_reasons = clock_reasons
        self._nvml: ModuleType | None = None
        self._error: type[BaseException] = Exception
        self._gpus: list[_Gpu] = []
        self._notes: list[str] = []
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._started = False
        self._unavailable: str | None = None
        self._result: NvmlResult | None = None
        self._failure: BaseException | None = None
        self._gpu_gone = False
        self._t0 = 0.0
        self._sweeps = self._late = 0
        self._wall_s = self._cpu_s = self._wall_max_s = 0.0

    # -- public API

    @property
    def available(self) -> bool | None:
        """``None`` before :meth:`start`; then whether NVML started."""
        return None if not self._started else self._unavailable is None

    @property
    def result(self) -> NvmlResult | None:
        """The result once :meth:`stop` has run, else ``None``."""
        return self._result

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> NvmlSampler:
        """Initialise NVML, look up the GPUs once and start the sampling thread.

        A missing or broken NVML does not raise (``stop()`` returns ``available=False`` with the
        reason). Raises :class:`InputError` for a GPU index NVML does not have (NVML is shut
        down first) and ``RuntimeError`` when called a second time.
        """
        if self._started:
            raise RuntimeError("NvmlSampler.start() called twice; a sampler runs once")
        self._started = True
        self._unavailable = "start() failed"
        self._unavailable = self._open_nvml()
        if self._unavailable is None:
            self._t0 = time.perf_counter()
            self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> NvmlResult:
        """Stop sampling, join the thread, shut NVML down and summarise. Idempotent."""
        if self._result is not None:
            return self._result
        if not self._started:
            raise RuntimeError("NvmlSampler.stop() called before start()")
        if self._unavailable is not None:
            reason = f"NVML unavailable: {self._unavailable}"
            self._result = NvmlResult(available=False, reason=reason)
            return self._result
        assert self._thread is not None
        self._stop_event.set()
        self._thread.join()
        duration_s = time.perf_counter() - self._t0
        self._shutdown()
        if self._failure is not None:
            raise RuntimeError("the NVML sampling thread failed") from self._failure
        self._result = self._summarize(duration_s)
        return self._result

    def __enter__(self) -> NvmlSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start-up

    def _open_nvml(self) -> str | None:
        """Initialise NVML and open the GPUs; the reason NVML is unusable, or ``None``."""
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError as exc:
            return f"{PYNVML_MISSING} ({exc})"
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return nvml_reason(exc)
        self._nvml, self._error = nvml, nvml.NVMLError
        try:
            indices = self._select(nvml.nvmlDeviceGetCount())
            self._gpus = [self._open_gpu(nvml, i) for i in indices]
        except nvml.NVMLError as exc:
            self._shutdown()
            return f"listing GPUs failed: {nvml_reason(exc)}"
        except BaseException:
            self._shutdown()
            raise
        if not self._gpus:
            self._shutdown()
            return "NVML works but reports no GPUs"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            self._notes.append(
                f"GPU indices are NVML indices (PCI bus order); CUDA_VISIBLE_DEVICES={visible!r} "
                "does not apply to them"
            )
        return None

    def _select(self, count: int) -> list[int]:
        if self._wanted is None:
            return list(range(count))
        bad = [i for i in self._wanted if not 0 <= i < count]
        if bad:
            have = f"indices 0-{count - 1}" if count else "none"
            raise InputError(
                f"GPU index {', '.join(map(str, bad))} not found: NVML sees {count} GPU(s), {have}"
            )
        return list(self._wanted)

    def _open_gpu(self, nvml: ModuleType, index: int) -> _Gpu:
        """Handle, name, UUID and max SM clock, looked up once. A GPU NVML cannot open is kept
        as lost at 0 s with the reason (and a note); the others are still sampled."""
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as exc:
            why = f"NVML could not open it: {nvml_reason(exc)}"
            self._notes.append(f"GPU {index}: not sampled, {why}")
            return _Gpu(GpuResult(index, "unknown", lost_at_s=0.0, lost_reason=why), None)
        uuid, _ = _once(lambda: _text(nvml.nvmlDeviceGetUUID(handle)), nvml)
        max_mhz, why = _once(
            lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM), nvml
        )
        gpu = _Gpu(GpuResult(index, name, uuid, max_sm_clock_mhz=max_mhz or None), handle)
        if not max_mhz:
            why = why or "NVML reported 0 MHz"
            gpu.result.unsupported["sm_clock_ratio"] = f"max SM clock unavailable: {why}"
        _build_readers(nvml, gpu, self._pcie, self._clock_reasons)
        return gpu

    def _shutdown(self) -> None:
        """``nvmlShutdown`` once (NVML counts inits; an error here changes nothing)."""
        nvml, self._nvml = self._nvml, None
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except nvml.NVMLError:
                pass

    # -- the sampling thread

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # re-raised by stop()
            self._failure = exc

    def _loop(self) -> None:
        """Sweep all GPUs every ``interval_s`` on a fixed schedule (no drift) until stopped."""
        clock, cpu, wait = time.perf_counter, time.thread_time, self._stop_event.wait
        interval, t0 = self.interval_s, self._t0
        active = [g for g in self._gpus if g.readers]
        next_due = clock()
        while active:
            began, cpu_began = clock(), cpu()
            for gpu in active:
                self._sample(gpu, clock() - t0)
            ended = clock()
            self._account(ended - began, cpu() - cpu_began)
            if self._gpu_gone:
                active, self._gpu_gone = [g for g in active if g.readers], False
            next_due += interval
            if next_due < ended:
                self._late += 1
                next_due = ended
            if wait(next_due - clock()):
                return

    def _account(self, wall_s: float, cpu_s: float) -> None:
        self._sweeps += 1
        self._wall_s += wall_s
        self._cpu_s += cpu_s
        if wall_s > self._wall_max_s:
            self._wall_max_s = wall_s

    def _sample(self, gpu: _Gpu, t: float) -> None:
        """Read every active reader of ``gpu``; ``t`` is seconds since start."""
        handle = gpu.handle
        for reader in gpu.readers:
            try:
                values = reader.read(handle)
            except self._error as exc:
                values = self._recover(gpu, reader, exc, t)
                if values is None:
                    if gpu.result.lost_at_s is not None:
                        return
                    continue
            for series, value in zip(reader.series, values):  # noqa: B905 - equal by construction
                series.times_s.append(t)
                series.values.append(value)

    def _recover(
        self, gpu: _Gpu, reader: _Reader, exc: BaseException, t: float
    ) -> tuple[float, ...] | None:
        """Handle a failed read: switch to the fallback function and retry, mark the GPU lost,
        retire the reading for good, or count a transient error. Values only after a retry."""
        cls = type(exc).__name__
        if cls == "NVMLError_FunctionNotFound" and reader.fallback is not None:
            reader.read, reader.fallback = reader.fallback, None
            try:
                return reader.read(gpu.handle)
            except self._error as again:
                return self._recover(gpu, reader, again, t)
        if cls in _GPU_GONE_ERRORS:
            gpu.result.lost_at_s, gpu.result.lost_reason = t, nvml_reason(exc)
            gpu.readers, self._gpu_gone = [], True
        elif cls in _PERMANENT_ERRORS:
            for name in reader.names:
                gpu.result.unsupported[name] = nvml_reason(exc)
            gpu.readers = [r for r in gpu.readers if r is not reader]
            self._gpu_gone = self._gpu_gone or not gpu.readers
        else:
            reader.errors += 1
            reader.first_error = reader.first_error or nvml_reason(exc)
        return None

    # -- the result

    def _summarize(self, duration_s: float) -> NvmlResult:
        gpus = []
        for gpu in self._gpus:
            for reader in gpu.all_readers:
                if reader.errors:
                    for name in reader.names:
                        gpu.result.read_errors[name] = (
                            f"{reader.errors} read(s) failed; first: {reader.first_error}"
                        )
            gpus.append(summarize_gpu(gpu.result, self.warmup_s))
        lost = [
            f"GPU {g.result.index} lost at {g.result.lost_at_s:.2f} s: {g.result.lost_reason}; "
            "its earlier samples are kept and the other GPUs were sampled to the end"
            for g in self._gpus
            if g.handle is not None and g.result.lost_at_s is not None
        ]
        sweeps, cpu_s = self._sweeps, self._cpu_s
        return NvmlResult(
            available=True,
            interval_s=self.interval_s,
            warmup_s=self.warmup_s,
            duration_s=duration_s,
            sweeps=sweeps,
            late_sweeps=self._late,
            sweep_ms_mean=1000 * self._wall_s / sweeps if sweeps else None,
            sweep_ms_max=1000 * self._wall_max_s if sweeps else None,
            sweep_cpu_ms_mean=1000 * cpu_s / sweeps if sweeps else None,
            overhead_pct=100 * cpu_s / duration_s if duration_s > 0 else None,
            gpus=gpus,
            notes=[*self._notes, *lost, *self._pace_notes()],
        )

    def _pace_notes(self) -> list[str]:
        if not self._late:
            return []
        mean_ms = 1000 * self._wall_s / self._sweeps
        hint = (
            " (PCIe reads wait ~20 ms each; pcie=False or --no-pcie drops them)"
            if self._pcie
            else ""
        )
        return [
            f"{self._late} of {self._sweeps} sweeps ended after the next was due: a sweep takes "
            f"{mean_ms:.1f} ms on average against a {self.interval_s * 1000:g} ms interval{hint}"
        ]


# ----------------------------------------------------------------------------- CLI

DESCRIPTION = """\
Sample every GPU (or --gpus) through NVML for --duration-s seconds and summarise each metric
per GPU: mean, median (p50), min, max and sample count (n).

units (in the metric names):
  util_gpu_pct       % of NVML's own sample period (1/6 s to 1 s, per product) in which any
                     kernel ran; not SM occupancy. util_memory_pct: same for device memory traffic.
  memory_used_bytes  bytes in use (memory_used_pct: % of the GPU's total)
  power_w            board power in watts (NVML reports milliwatts); a 1 s average on Ampere
                     and newer except A100, instantaneous on A100 and older
  sm_clock_mhz       SM clock in MHz; sm_clock_ratio = sm_clock_mhz / max SM clock (1.0 = max)
  temperature_c      GPU die temperature in degrees Celsius
  pcie_tx_kbps       PCIe transmit / receive in KB/s (kilobytes per second, as NVML reports),
  pcie_rx_kbps       each read measuring a 20 ms window; they make a sweep take >= 40 ms per GPU
  clock event reasons  % of samples during which NVML reported each clock-slowing reason
                     (sw_power_cap, hw_thermal_slowdown, ...)

A reading a GPU does not support is listed as not measured with NVML's reason, never as 0.
GPU indices are NVML indices (PCI bus order), not CUDA device numbers.
The sampling cost line: wall and CPU milliseconds per sweep, and the sampler thread's CPU time
as % of one core.
"""

EPILOG = """\
examples:
  %(prog)s --duration-s 30 --warmup-s 5
  %(prog)s --gpus 0,1 --interval-ms 50 --no-pcie --format json

exit codes: 0 sampled; 1 NVML unavailable (no driver, no permission, ...) or a GPU was lost
during sampling; 2 usage error.
"""


def _gpu_list(text: str) -> list[int]:
    """argparse ``type=`` for ``--gpus 0,1``: comma-separated NVML indices >= 0."""
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--gpus expects comma-separated GPU indices like 0,1; got {text!r}"
        ) from None
    if any(i < 0 for i in indices):
        raise argparse.ArgumentTypeError(f"--gpus expects indices >= 0, got {text}")
    return indices


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="GPU metrics sampled through NVML (pynvml).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{sample}")
    sample = sub.add_parser(
        "sample",
        help="sample GPU utilization, memory, power, clocks, temperature and PCIe for a while",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    sample.add_argument(
        "--duration-s",
        type=positive_float("--duration-s"),
        default=5.0,
        metavar="S",
        help="seconds to sample (default 5)",
    )
    sample.add_argument(
        "--interval-ms",
        type=positive_float("--interval-ms"),
        default=DEFAULT_INTERVAL_S * 1000,
        metavar="MS",
        help=f"milliseconds between sweeps over all GPUs (default {DEFAULT_INTERVAL_S * 1000:g}, "
        f"at least {MIN_INTERVAL_S * 1000:g})",
    )
    sample.add_argument(
        "--gpus",
        type=_gpu_list,
        metavar="LIST",
        help="NVML GPU indices to sample, comma-separated (default: all)",
    )
    sample.add_argument(
        "--warmup-s",
        type=cli.non_negative_float("--warmup-s"),
        default=0.0,
        metavar="S",
        help="leave the first S seconds out of the summaries (default 0)",
    )
    sample.add_argument(
        "--no-pcie",
        action="store_true",
        help="skip PCIe TX/RX (each read waits 20 ms inside NVML)",
    )
    sample.add_argument(
        "--no-clock-reasons", action="store_true", help="skip clock event (throttle) reasons"
    )
    sample.add_argument(
        "--samples",
        action="store_true",
        help="with --format json: include every raw sample as [seconds since start, value]",
    )
    add_format_flag(sample)
    return parser


def _gpu_title(gpu: GpuResult) -> str:
    memory = f", {gpu.memory_total_bytes / 1024**3:.1f} GiB" if gpu.memory_total_bytes else ""
    return f"GPU {gpu.index} ({gpu.name}{memory})"


def _reasons_line(gpu: GpuResult) -> str | None:
    if not gpu.clock_event_reasons_pct:
        return None
    active = [f"{k} {v:.0f}%" for k, v in gpu.clock_event_reasons_pct.items() if v > 0]
    return f"GPU {gpu.index} clock event reasons, % of samples: {', '.join(active) or 'none'}"


def render(result: NvmlResult) -> str:
    """The human-readable report of an available result."""
    lines = [
        f"NVML: {result.sweeps} sweeps in {result.duration_s:.2f} s, every "
        f"{(result.interval_s or 0) * 1000:g} ms; summaries skip the first {result.warmup_s:g} s",
        f"sampling cost: {fmt_num(result.sweep_ms_mean)} ms per sweep (max "
        f"{fmt_num(result.sweep_ms_max)} ms), {fmt_num(result.sweep_cpu_ms_mean)} ms CPU; "
        f"sampler thread {fmt_num(result.overhead_pct, 2)}% of one core",
        "",
    ]
    for g in result.gpus:
        lost = f"; lost at {g.lost_at_s:.2f} s" if g.lost_at_s is not None else ""
        max_mhz = f"; max SM clock {g.max_sm_clock_mhz:g} MHz" if g.max_sm_clock_mhz else ""
        lines.append(f"{_gpu_title(g)}{max_mhz}{lost}")
    lines.append("")
    rows = [
        [g.index, name, *(fmt_num(v, 4) for v in (m.mean, m.p50, m.min, m.max)), m.count]
        for g in result.gpus
        for name, m in g.metrics.items()
    ]
    lines.append(render_table(["gpu", "metric", "mean", "p50", "min", "max", "n"], rows))
    lines += [line for g in result.gpus if (line := _reasons_line(g))]
    missing = [f"  GPU {g.index} {k}: {v}" for g in result.gpus for k, v in g.not_measured.items()]
    errors = [f"  GPU {g.index} {k}: {v}" for g in result.gpus for k, v in g.read_errors.items()]
    for title, items in (("not measured:", missing), ("read errors:", errors)):
        if items:
            lines += ["", title, *items]
    if result.notes:
        lines += ["", "notes:", *[f"  - {n}" for n in result.notes]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interval_ms < MIN_INTERVAL_S * 1000:
        parser.error(
            f"--interval-ms must be at least {MIN_INTERVAL_S * 1000:g}, got {args.interval_ms:g}"
        )
    if args.warmup_s >= args.duration_s:
        parser.error(
            f"--warmup-s ({args.warmup_s:g}) must be shorter than --duration-s ({args.duration_s:g})"
        )
    sampler = NvmlSampler(
        interval_s=args.interval_ms / 1000,
        gpus=args.gpus,
        warmup_s=args.warmup_s,
        pcie=not args.no_pcie,
        clock_reasons=not args.no_clock_reasons,
    )
    with sampler:
        if sampler.available:
            time.sleep(args.duration_s)
    result = sampler.stop()
    if args.format == "json":
        print_json(result.to_dict(samples=args.samples))
    elif result.available:
        print(render(result))
    if not result.available:
        sys.stderr.write(f"{result.reason}\n")
        return EXIT_FAILED
    lost = [g.index for g in result.gpus if g.lost_at_s is not None]
    if lost:
        sys.stderr.write(f"GPU(s) {', '.join(map(str, lost))} lost during sampling (see notes)\n")
        return EXIT_FAILED
    return EXIT_OK
