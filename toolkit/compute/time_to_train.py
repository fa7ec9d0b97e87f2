"""Time to train: ``C = 6 N D`` FLOPs (N active for MoE) divided by ``GPUs x peak x MFU``.

FLOPs come from :func:`toolkit.compute.flops.dense_training_flops` (the 6N term) and, when a
sequence length is given, the attention term of :func:`toolkit.compute.flops.training_flops`;
the division is :func:`toolkit.compute.mfu.training_time_s`. One formula, one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.compute.flops import dense_training_flops, training_flops
from toolkit.compute.mfu import training_time_s
from toolkit.compute.model_config import ModelShape, count_params
from toolkit.errors import InputError

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class TrainTime:
    """Compute and wall-clock time of a training run; ``arithmetic`` has one line per step."""

    params: float  # N used in 6ND (matmul-active params for a config, as given otherwise)
    tokens: float  # D
    flops_per_token: float
    total_flops: float  # C, FLOPs
    num_gpus: int
    peak_flops_per_gpu: float  # FLOP/s
    mfu: float
    seconds: float
    days: float
    gpu_hours: float
    arithmetic: list[str] = field(default_factory=list)


def train_time(
    tokens: float,
    peak_flops_per_gpu: float,
    num_gpus: int,
    mfu: float,
    params: float | None = None,
    shape: ModelShape | None = None,
    seq_len: int | None = None,
) -> TrainTime:
    """Time to train on ``tokens`` tokens. Give ``params`` (N) or ``shape`` (N = matmul-active
    parameters, i.e. active experts only for MoE); ``seq_len`` adds the attention term
    ``12 L H Q T`` per token (``shape`` only)."""
    if (params is None) == (shape is None):
        raise InputError("give exactly one of --params or a model (--preset/--config)")
    if seq_len is not None and shape is None:
        raise InputError("--seq-len needs a model (--preset/--config) for the attention term")
    lines: list[str] = []
    if shape is not None:
        counts = count_params(shape)
        n = float(counts.matmul_active)
        moe = (
            f" (MoE: {shape.experts_per_token} of {shape.num_experts} experts active)"
            if shape.is_moe
            else ""
        )
        lines.append(
            f"N = matmul-active params{moe} = {counts.matmul_active:,} (total {counts.total:,})"
        )
    else:
        n = float(params)
    dense_c = dense_training_flops(n, tokens)
    per_token = 6.0 * n
    total = dense_c
    lines.append(f"C = 6*N*D = 6 x {n:,.6g} x {tokens:,.6g} = {dense_c:.4g} FLOPs")
    if seq_len is not None:
        tf = training_flops(shape, seq_len)
        attn = tf.attention_per_token * tokens
        per_token = tf.model_per_token
        total = dense_c + attn
        lines.append(
            f"+ attention 12*L*H*Q*T x D = {tf.attention_per_token:,.0f} x {tokens:,.6g} = "
            f"{attn:.4g}; C = {total:.4g} FLOPs"
        )
    seconds = training_time_s(total, peak_flops_per_gpu, num_gpus, mfu)
    lines.append(
        f"time = C / (GPUs x peak x MFU) = {total:.4g} / ({num_gpus} x "
        f"{peak_flops_per_gpu / 1e12:g}e12 FLOP/s x {mfu:g}) = {seconds:,.0f} s"
        f" = {seconds / SECONDS_PER_DAY:,.2f} days"
    )
    gpu_hours = seconds * num_gpus / 3600
    lines.append(f"GPU-hours = {seconds:,.0f} s x {num_gpus} / 3600 = {gpu_hours:,.0f}")
    return TrainTime(
        params=n,
        tokens=float(tokens),
        flops_per_token=per_token,
        total_flops=total,
        num_gpus=num_gpus,
        peak_flops_per_gpu=peak_flops_per_gpu,
        mfu=mfu,
        seconds=seconds,
        days=seconds / SECONDS_PER_DAY,
        gpu_hours=gpu_hours,
        arithmetic=lines,
    )
