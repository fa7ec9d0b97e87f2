"""Model and hardware FLOPs utilization (MFU, HFU).

MFU = achieved model FLOP/s / (num_gpus x peak FLOP/s per GPU), where model FLOPs exclude
activation recomputation. HFU counts the FLOPs the hardware actually executed, recompute included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from toolkit.errors import InputError


def mfu_from_step(
    flops_per_step: float, step_time_s: float, peak_flops_per_gpu: float, num_gpus: int = 1
) -> float:
    """Utilization in 0..1 of one training step.

    ``flops_per_step``: FLOPs of the whole step over all GPUs; ``step_time_s``: seconds;
    ``peak_flops_per_gpu``: FLOP/s (not TFLOP/s) of one GPU for the dtype in use.
    """
    for name, value in (
        ("flops_per_step", flops_per_step),
        ("step_time_s", step_time_s),
        ("peak_flops_per_gpu", peak_flops_per_gpu),
        ("num_gpus", num_gpus),
    ):
        if not value > 0:
            raise InputError(f"{name} must be > 0, got {value}")
    return flops_per_step / step_time_s / (peak_flops_per_gpu * num_gpus)


@dataclass(frozen=True)
class Utilization:
    """MFU and HFU with every step of the arithmetic kept.

    Rates are FLOP/s; ``tokens_per_sec`` is the throughput of all ``num_gpus`` GPUs together.
    ``mfu``/``hfu`` are fractions (0..1); ``arithmetic`` holds one line per step, for people.
    """

    tokens_per_sec: float
    num_gpus: int
    model_flops_per_token: float
    hardware_flops_per_token: float
    peak_flops_per_gpu: float
    achieved_model_flops_per_gpu: float
    achieved_hardware_flops_per_gpu: float
    mfu: float
    hfu: float
    arithmetic: list[str] = field(default_factory=list)


def _require_positive(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not (isinstance(value, int | float) and value > 0):
            raise InputError(f"{name} must be > 0, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value!r}")


def utilization(
    tokens_per_sec: float,
    model_flops_per_token: float,
    peak_flops_per_gpu: float,
    num_gpus: int = 1,
    hardware_flops_per_token: float | None = None,
) -> Utilization:
    """MFU (and HFU) from a measured throughput.

    ``tokens_per_sec``: tokens/s over all GPUs; ``model_flops_per_token``: FLOPs/token without
    recomputation; ``peak_flops_per_gpu``: FLOP/s of one GPU (not TFLOP/s);
    ``hardware_flops_per_token``: FLOPs/token actually executed (defaults to the model FLOPs,
    making HFU equal MFU).
    """
    hw = model_flops_per_token if hardware_flops_per_token is None else hardware_flops_per_token
    _require_positive(
        tokens_per_sec=tokens_per_sec,
        model_flops_per_token=model_flops_per_token,
        peak_flops_per_gpu=peak_flops_per_gpu,
        num_gpus=num_gpus,
        hardware_flops_per_token=hw,
    )
    if isinstance(num_gpus, float) and not num_gpus.is_integer():
        raise InputError(f"num_gpus must be a whole number, got {num_gpus}")
    num_gpus = int(num_gpus)
    per_gpu_tokens = tokens_per_sec / num_gpus
    achieved = per_gpu_tokens * model_flops_per_token
    achieved_hw = per_gpu_tokens * hw
    mfu = achieved / peak_flops_per_gpu
    hfu = achieved_hw / peak_flops_per_gpu
    lines = [
        f"tokens/s per GPU = {tokens_per_sec:,.6g} / {num_gpus} GPUs = {per_gpu_tokens:,.6g}",
        f"achieved model FLOP/s per GPU = {per_gpu_tokens:,.6g} tokens/s x "
        f"{model_flops_per_token:,.0f} FLOPs/token = {achieved / 1e12:,.4g} TFLOP/s",
        f"MFU = {achieved / 1e12:,.4g} / {peak_flops_per_gpu / 1e12:,.4g} TFLOP/s peak"
        f" = {100 * mfu:.2f}%",
    ]
    if hw != model_flops_per_token:
        lines += [
            f"achieved hardware FLOP/s per GPU = {per_gpu_tokens:,.6g} tokens/s x "
            f"{hw:,.0f} FLOPs/token = {achieved_hw / 1e12:,.4g} TFLOP/s",
            f"HFU = {achieved_hw / 1e12:,.4g} / {peak_flops_per_gpu / 1e12:,.4g} TFLOP/s peak"
            f" = {100 * hfu:.2f}%",
        ]
    return Utilization(
        tokens_per_sec=float(tokens_per_sec),
        num_gpus=num_gpus,
        model_flops_per_token=float(model_flops_per_token),
        hardware_flops_per_token=float(hw),
        peak_flops_per_gpu=float(peak_flops_per_gpu),
        achieved_model_flops_per_gpu=achieved,
        achieved_hardware_flops_per_gpu=achieved_hw,
        mfu=mfu,
        hfu=hfu,
        arithmetic=lines,
    )


def tokens_per_sec_from_step(step_time_s: float, tokens_per_step: float) -> float:
    """Throughput in tokens/s of a step of ``tokens_per_step`` tokens taking ``step_time_s`` s."""
    _require_positive(step_time_s=step_time_s, tokens_per_step=tokens_per_step)
    return tokens_per_step / step_time_s


def utilization_from_step(
    step_time_s: float,
    tokens_per_step: float,
    model_flops_per_token: float,
    peak_flops_per_gpu: float,
    num_gpus: int = 1,
    hardware_flops_per_token: float | None = None,
) -> Utilization:
    """As :func:`utilization`, from a step time (seconds) and tokens per step (all GPUs)."""
    tps = tokens_per_sec_from_step(step_time_s, tokens_per_step)
    result = utilization(
        tps, model_flops_per_token, peak_flops_per_gpu, num_gpus, hardware_flops_per_token
    )
    first = (
        f"tokens/s = {tokens_per_step:,.6g} tokens/step / {step_time_s:,.6g} s/step = {tps:,.6g}"
    )
    return replace(result, arithmetic=[first, *result.arithmetic])


def training_time_s(
    total_flops: float, peak_flops_per_gpu: float, num_gpus: int, mfu: float
) -> float:
    """Wall-clock seconds to execute ``total_flops`` model FLOPs: ``C / (GPUs x peak x MFU)``.

    The inverse of :func:`mfu_from_step`. ``peak_flops_per_gpu`` in FLOP/s (not TFLOP/s);
    ``mfu`` a fraction in (0, 1].
    """
    _require_positive(
        total_flops=total_flops, peak_flops_per_gpu=peak_flops_per_gpu, num_gpus=num_gpus, mfu=mfu
    )
    if mfu > 1:
        raise InputError(f"mfu must be a fraction in (0, 1], got {mfu!r}")
    return total_flops / (num_gpus * peak_flops_per_gpu * mfu)
