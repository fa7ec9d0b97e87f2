"""GPU activity of a training run: NVML and DCGM results reduced to the GPU that trained.

The training device (``cuda:N`` as torch numbers it) is matched to NVML/DCGM's numbering by UUID
when torch reports one, by index when ``CUDA_VISIBLE_DEVICES`` is unset, and otherwise the
figures are averaged over every sampled GPU, which is said in ``not_measured``-style notes.
"""

from __future__ import annotations

import os
import statistics

import torch

from toolkit.profiling.instruments.dcgm_summary import DcgmResult
from toolkit.profiling.instruments.gap_analyzer import GpuActivity
from toolkit.profiling.instruments.nvml_sampler import NvmlResult

DCGM_FIELDS = {"tca": 1004, "sm_active": 1002, "gr_active": 1001, "dram_active": 1005}
NVML_METRICS = {
    "util_gpu_pct": "util_gpu_pct",
    "sm_clock_ratio": "sm_clock_ratio",
    "power_w": "power_w",
    "temperature_c": "temperature_c",
}


def _torch_uuid(device: torch.device) -> str | None:
    try:
        return str(torch.cuda.get_device_properties(device).uuid).lower().removeprefix("gpu-")
    except (AttributeError, RuntimeError, AssertionError):
        return None


def nvml_index(device: torch.device, nvml: NvmlResult | None, notes: list[str]) -> int | None:
    """The NVML index of the training GPU, or None (then figures are averaged over GPUs)."""
    if device.type != "cuda":
        notes.append(f"training ran on {device}: GPU figures are averaged over the node's GPUs")
        return None
    uuid = _torch_uuid(device)
    if uuid and nvml is not None and nvml.available:
        for g in nvml.gpus:
            if g.uuid and g.uuid.lower().removeprefix("gpu-") == uuid:
                return g.index
    if not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return device.index or 0
    notes.append(
        "could not map the torch device to an NVML index (CUDA_VISIBLE_DEVICES set, no UUID match): GPU figures are averaged over sampled GPUs"
    )
    return None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def activity(device: torch.device, dcgm: DcgmResult | None, nvml: NvmlResult | None) -> GpuActivity:
    notes: list[str] = []
    index = nvml_index(device, nvml, notes)
    act = GpuActivity()
    if dcgm is None:
        act.not_measured.append("TCA: DCGM sampling off")
    elif not dcgm.measured:
        act.not_measured.append(
            f"TCA: {dcgm.unavailable_message() if not dcgm.available else 'DCGM measured no samples'}"
        )
    else:
        for attr, fid in DCGM_FIELDS.items():
            values = [
                f.mean for e in dcgm.entities if index is None or e.entity == f"GPU {index}"
                for f in e.fields if f.field_id == fid and f.mean is not None
            ]  # fmt: skip
            setattr(act, attr, _mean(values))
    if nvml is None:
        act.not_measured.append("SM clock: NVML sampling off")
    elif not nvml.available:
        act.not_measured.append(f"SM clock: {nvml.reason}")
    else:
        gpus = [g for g in nvml.gpus if index is None or g.index == index]
        for attr, metric in NVML_METRICS.items():
            setattr(
                act,
                attr,
                _mean(
                    [
                        g.metrics[metric].mean
                        for g in gpus
                        if metric in g.metrics and g.metrics[metric].mean is not None
                    ]
                ),
            )
        reasons = {
            r
            for g in gpus
            for r, pct in (g.clock_event_reasons_pct or {}).items()
            if pct and pct > 0
        }
        act.throttle_reasons = sorted(reasons)
    act.not_measured += notes
    return act
