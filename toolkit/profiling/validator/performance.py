"""Throughput and MFU of a measured run, and the peak FLOPS it is measured against."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from toolkit.compute.mfu import mfu_from_step
from toolkit.errors import InputError
from toolkit.profiling.validator.checks import Check
from toolkit.profiling.validator.runtime import TrainResult
from toolkit.profiling.validator.thresholds import Thresholds


@dataclass
class Peak:
    """Dense peak of one device for the dtype in use; ``flops_per_s`` None when unknown."""

    flops_per_s: float | None
    dtype: str
    source: str  # where the number came from, or why there is none


@dataclass
class Performance:
    tokens_per_sec: float | None  # or samples/s: see ``unit``
    unit: str
    achieved_tflops: float | None  # measured FLOPs per step / mean step time, TFLOP/s
    peak_tflops: float | None
    peak_source: str
    dtype: str
    mfu: float | None  # fraction 0..1
    mfu_note: str
    tokens_note: str = ""  # why tokens_per_sec is None


def cuda_tf32_enabled() -> bool:
    """Whether fp32 matmuls on CUDA run as TF32.

    Reads ``torch.backends.cuda.matmul.fp32_precision`` (torch >= 2.9): from torch 2.9 on, the
    legacy readers ``allow_tf32`` and ``torch.get_float32_matmul_precision()`` raise once user code
    has set the new API. Older torch has only ``allow_tf32``.
    """
    matmul = torch.backends.cuda.matmul
    try:
        return matmul.fp32_precision == "tf32"
    except AttributeError:
        return bool(matmul.allow_tf32)


def infer_dtype(model: torch.nn.Module, device: torch.device) -> str:
    """Compute dtype from the parameters; fp32 matmuls on CUDA count as tf32 when TF32 is on."""
    p = next(model.parameters(), None)
    if p is None:
        return "fp32"
    if p.dtype == torch.bfloat16:
        return "bf16"
    if p.dtype == torch.float16:
        return "fp16"
    if device.type == "cuda" and cuda_tf32_enabled():
        return "tf32"
    return "fp32"


def resolve_peak(
    device: torch.device, dtype: str, gpu: str | None, peak_tflops: float | None
) -> Peak:
    """``--peak-tflops`` wins, then ``--gpu NAME``, then the GPU torch reports; CPUs have none."""
    if peak_tflops is not None:
        return Peak(peak_tflops * 1e12, dtype, f"--peak-tflops {peak_tflops:g}")
    if gpu is None and device.type != "cuda":
        return Peak(
            None, dtype, f"no peak FLOPS for this {device.type.upper()} (give --peak-tflops)"
        )
    from toolkit.hardware.specs import UnknownGpuError, get_spec, resolve_gpu

    if gpu is not None:
        spec = get_spec(gpu)  # unknown name: InputError, exit 2
        return Peak(spec.peak_flops(dtype), dtype, f"{spec.name} dense {dtype} (--gpu {gpu})")
    name = torch.cuda.get_device_name(device)
    memory = torch.cuda.get_device_properties(device).total_memory
    try:
        spec = resolve_gpu(name, memory_bytes=memory)
        return Peak(spec.peak_flops(dtype), dtype, f"{spec.name} dense {dtype} (detected {name!r})")
    except UnknownGpuError as exc:
        return Peak(None, dtype, f"GPU {name!r} not in the spec table: {exc}")
    except InputError as exc:  # the part lacks this dtype
        return Peak(None, dtype, str(exc))


def measure(train: TrainResult, peak: Peak) -> Performance:
    t = train.times
    tps = train.tokens_per_step * 1e3 / t.mean_ms if (t and train.tokens_per_step) else None
    achieved = (
        train.flops_per_step / (t.mean_ms / 1e3) / 1e12 if (t and train.flops_per_step) else None
    )
    tokens_note = (
        ""
        if tps is not None
        else "not measured: no step after warm-up"
        if t is None
        else "not measured: no batch size observed (no tensor input to the model)"
    )
    mfu, note = None, ""
    if t is None:
        note = "not measured: no step after warm-up"
    elif train.flops_per_step is None:
        note = f"not measured: FLOPs {train.flops_note.removeprefix('not measured: ')}"
    elif peak.flops_per_s is None:
        note = f"not measured: {peak.source}"
    else:
        mfu = mfu_from_step(train.flops_per_step, t.mean_ms / 1e3, peak.flops_per_s)
        note = f"{achieved:.3g} TFLOP/s achieved / {peak.flops_per_s / 1e12:.4g} TFLOP/s peak ({peak.source})"
    return Performance(
        tokens_per_sec=tps,
        unit=train.throughput_unit,
        achieved_tflops=achieved,
        peak_tflops=peak.flops_per_s / 1e12 if peak.flops_per_s else None,
        peak_source=peak.source,
        dtype=peak.dtype,
        mfu=mfu,
        mfu_note=note,
        tokens_note=tokens_note,
    )


def judge(perf: Performance, train: TrainResult, th: Thresholds) -> list[Check]:
    t = train.times
    rows = [
        # check name, threshold field, limit, measured value, why unmeasured, format, unit
        ("MFU", "min_mfu", th.min_mfu, perf.mfu, perf.mfu_note, "{:.1%}", ""),
        ("step time", "max_step_time_ms", th.max_step_time_ms, t.median_ms if t else None,
         "not measured: no step after warm-up was timed", "{:.4g}", " ms (median)"),
        ("throughput", "min_tokens_per_sec", th.min_tokens_per_sec, perf.tokens_per_sec,
         "not measured", "{:,.0f}", f" {perf.unit}/s"),
    ]  # fmt: skip
    checks = []
    if perf.mfu is not None and perf.mfu > 1:
        checks.append(
            Check(
                "MFU",
                "fail",
                f"{perf.mfu:.1%} is above 100%: the peak ({perf.peak_source}) is too low "
                "for this device and dtype, or the FLOPs are over-counted",
            )
        )
    for name, field, limit, value, why, fmt, unit in rows:
        if limit is None:
            continue
        if value is None:
            checks.append(Check(name, "fail", f"{field} {limit:g} set but {why}"))
            continue
        ok = value >= limit if field.startswith("min_") else value <= limit
        sign = (">=" if ok else "<") if field.startswith("min_") else ("<=" if ok else ">")
        checks.append(
            Check(
                name,
                "pass" if ok else "fail",
                f"{fmt.format(value)} {sign} {fmt.format(limit)}{unit}",
            )
        )
    return checks
