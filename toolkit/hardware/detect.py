"""What is this machine: no GPU, local GPUs, or a Slurm job? And which GPUs, exactly?

GPUs come from NVML (the ``pynvml`` module of nvidia-ml-py); only when NVML is unavailable do we
fall back to ``torch.cuda`` (which also sees ROCm GPUs), and the notes say so. Each GPU is matched
to ``gpu_specs.yaml`` with :func:`toolkit.hardware.specs.resolve`; a GPU that does not match exactly
keeps ``spec_key=None`` and the reason. Memory is in bytes.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolkit.hardware.specs import UnknownGpuError, resolve

KINDS = ("cpu_only", "local_gpu", "slurm")


@dataclass(frozen=True)
class GpuInfo:
    """One visible GPU. ``pci_device_id`` is the 16-bit PCI device id (NVML only)."""

    index: int
    name: str
    memory_total_bytes: int | None = None
    pci_device_id: int | None = None
    uuid: str | None = None
    spec_key: str | None = None
    spec_reason: str = ""


@dataclass(frozen=True)
class SlurmInfo:
    """Slurm job facts from ``SLURM_*`` environment variables (``None`` where unset)."""

    in_job: bool
    job_id: str | None = None
    job_name: str | None = None
    partition: str | None = None
    num_nodes: int | None = None
    node_list: str | None = None
    node_id: int | None = None
    ntasks: int | None = None
    ntasks_per_node: str | None = None
    proc_id: int | None = None
    local_id: int | None = None
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    gpus_per_node_raw: str | None = None
    job_gpus: str | None = None


@dataclass
class Environment:
    """``kind``: cpu_only | local_gpu | slurm; ``source``: nvml | torch | none."""

    kind: str
    gpus: list[GpuInfo] = field(default_factory=list)
    source: str = "none"
    slurm: SlurmInfo | None = None
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None and text.strip() else None
    except ValueError:
        return None


def _gpu_count(text: str | None) -> int | None:
    """``"4"``, ``"a100:4"`` or ``"gpu:a100:4"`` -> 4; a list like ``"a100:2,v100:1"`` -> 3."""
    if not text:
        return None
    total = 0
    for part in text.split(","):
        count = _int(part.rsplit(":", 1)[-1])
        if count is None:
            return None
        total += count
    return total


def _matched(
    index: int, name: str, memory: int | None, pci: int | None, uuid: str | None
) -> GpuInfo:
    try:
        found = resolve(name, memory, pci)
    except UnknownGpuError as exc:
        return GpuInfo(index, name, memory, pci, uuid, None, f"no exact spec match: {exc}")
    return GpuInfo(index, name, memory, pci, uuid, found.spec.key, f"matched by {found.how}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------- NVML


PYNVML_MISSING = "pynvml (nvidia-ml-py) is not installed"

NVML_ERROR_MEANINGS = {
    "NVMLError_LibraryNotFound": "NVML shared library not found: no NVIDIA driver installed or visible",
    "NVMLError_DriverNotLoaded": "NVIDIA kernel driver not loaded",
    "NVMLError_NoPermission": (
        "no permission to query the GPU (check /dev/nvidia* permissions or the container "
        "runtime's GPU access)"
    ),
    "NVMLError_GpuIsLost": "the GPU fell off the bus or stopped responding",
    "NVMLError_LibRmVersionMismatch": "NVML library and kernel driver versions differ",
    "NVMLError_NotSupported": "not supported by this GPU or driver",
    "NVMLError_Uninitialized": "NVML is not initialized (nvmlInit not called, or already shut down)",
    "NVMLError_Unknown": "unknown NVML error (the driver gave no reason; check nvidia-smi and dmesg)",
    "NVMLError_FunctionNotFound": "this NVIDIA driver is too old for the NVML call",
    "NVMLError_ResetRequired": "the GPU needs a reset before it can be queried again",
    "NVMLError_Timeout": "the NVML call timed out",
}


def nvml_reason(exc: BaseException) -> str:
    """One line for an NVML error: what it means, then the pynvml class. The one table of
    NVML error meanings; every NVML caller in labcoat uses it."""
    cls = type(exc).__name__
    detail = NVML_ERROR_MEANINGS.get(cls) or str(exc)
    return f"{detail} (pynvml.{cls})"


def _from_nvml(notes: list[str]) -> list[GpuInfo] | None:
    """GPUs via NVML, or ``None`` (with a note) when NVML cannot be used at all."""
    try:
        pynvml = importlib.import_module("pynvml")
    except ImportError as exc:
        notes.append(f"NVML unavailable: {PYNVML_MISSING} ({exc})")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        notes.append(f"NVML unavailable: {nvml_reason(exc)}")
        return None
    gpus: list[GpuInfo] = []
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            notes.append("NVML works but reports no GPUs")
        for index in range(count):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = _text(pynvml.nvmlDeviceGetName(handle))
            except pynvml.NVMLError as exc:
                notes.append(f"GPU {index}: NVML could not open it: {nvml_reason(exc)}")
                continue
            memory = pci = uuid = None
            try:
                memory = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
            except pynvml.NVMLError as exc:
                notes.append(f"GPU {index}: memory size unavailable: {nvml_reason(exc)}")
            try:
                pci = int(pynvml.nvmlDeviceGetPciInfo(handle).pciDeviceId) >> 16
            except pynvml.NVMLError as exc:
                notes.append(f"GPU {index}: PCI info unavailable: {nvml_reason(exc)}")
            try:
                uuid = _text(pynvml.nvmlDeviceGetUUID(handle))
            except pynvml.NVMLError as exc:
                notes.append(f"GPU {index}: UUID unavailable: {nvml_reason(exc)}")
            gpus.append(_matched(index, name, memory, pci, uuid))
    except pynvml.NVMLError as exc:
        notes.append(f"NVML unavailable: listing GPUs failed: {nvml_reason(exc)}")
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    return gpus


# ----------------------------------------------------------------------------- torch


def _from_torch(notes: list[str]) -> list[GpuInfo] | None:
    """GPUs via ``torch.cuda`` (CUDA or ROCm build), or ``None`` with a note."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        notes.append("torch fallback unavailable: torch is not installed")
        return None
    if not torch.cuda.is_available():
        build = "ROCm" if getattr(torch.version, "hip", None) else "CUDA"
        has = getattr(torch.version, "hip", None) or getattr(torch.version, "cuda", None)
        what = f"{build} {has} build" if has else "CPU-only build"
        notes.append(f"torch fallback: torch {torch.__version__} ({what}) sees no GPU")
        return None
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        uuid = getattr(props, "uuid", None)
        # props.pci_device_id is the PCI slot number, not the product id: not usable for matching.
        gpus.append(
            _matched(
                index,
                props.name,
                int(props.total_memory),
                None,
                None if uuid is None else str(uuid),
            )
        )
    notes.append(
        f"GPUs listed by torch.cuda (torch {torch.__version__}) because NVML is unavailable; "
        "no PCI device ids, so variants are told apart by name and memory only"
    )
    return gpus


# ----------------------------------------------------------------------------- Slurm


def slurm_from_env(
    env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which
) -> SlurmInfo | None:
    """Slurm facts from ``SLURM_*`` variables; outside a job, ``in_job=False`` if ``sinfo`` is on PATH."""
    job_id = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job_id:
        return SlurmInfo(in_job=False) if which("sinfo") else None
    gpus_raw = env.get("SLURM_GPUS_PER_NODE")
    on_node = _int(env.get("SLURM_GPUS_ON_NODE"))
    return SlurmInfo(
        in_job=True,
        job_id=job_id,
        job_name=env.get("SLURM_JOB_NAME"),
        partition=env.get("SLURM_JOB_PARTITION"),
        num_nodes=_int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES")),
        node_list=env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST"),
        node_id=_int(env.get("SLURM_NODEID")),
        ntasks=_int(env.get("SLURM_NTASKS")),
        ntasks_per_node=env.get("SLURM_NTASKS_PER_NODE"),
        proc_id=_int(env.get("SLURM_PROCID")),
        local_id=_int(env.get("SLURM_LOCALID")),
        cpus_per_task=_int(env.get("SLURM_CPUS_PER_TASK")),
        gpus_per_node=on_node if on_node is not None else _gpu_count(gpus_raw),
        gpus_per_node_raw=gpus_raw,
        job_gpus=env.get("SLURM_JOB_GPUS") or env.get("SLURM_STEP_GPUS"),
    )


# ----------------------------------------------------------------------------- entry point


def detect(
    env: Mapping[str, str] | None = None,
    use_torch: bool = True,
    which: Callable[[str], str | None] = shutil.which,
) -> Environment:
    """Describe this machine. ``env`` defaults to ``os.environ``; ``use_torch=False`` skips the fallback."""
    env = os.environ if env is None else env
    notes: list[str] = []
    source = "none"
    gpus = _from_nvml(notes)
    if gpus is not None:
        source = "nvml"
    elif use_torch:
        gpus = _from_torch(notes)
        if gpus is not None:
            source = "torch"
    gpus = gpus or []
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if source == "nvml" and visible is not None:
        notes.append(
            f"CUDA_VISIBLE_DEVICES={visible!r}: NVML lists every GPU on the node, not only the "
            "ones this process may use"
        )
    slurm = slurm_from_env(env, which)
    if slurm is not None and not slurm.in_job:
        notes.append(
            "Slurm tools (sinfo) found on PATH, but SLURM_JOB_ID is unset: not inside a job"
        )
    if slurm is not None:
        kind = "slurm"
    elif gpus:
        kind = "local_gpu"
    else:
        kind = "cpu_only"
    return Environment(kind=kind, gpus=gpus, source=source, slurm=slurm, notes=notes)
