"""Model and hardware FLOPs utilization (MFU, HFU).

MFU = achieved model FLOP/s / (num_gpus x peak FLOP/s per GPU), where model FLOPs exclude
activation recomputation. HFU counts the FLOPs the hardware actually executed, recompute included.
"""

from __future__ import annotations

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
