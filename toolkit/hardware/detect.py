"""What is this machine: no GPU, local GPUs, inside a Slurm job, or a machine that submits to a
Slurm cluster without being inside a job? And which GPUs, exactly?

Kinds: ``slurm`` (``SLURM_JOB_ID`` set: inside an allocation), ``slurm_login`` (Slurm tools on
PATH and a controller that answers ``sinfo``, but no job: a login/submit node; launch through
sbatch, and the compute nodes' GPUs come from ``sinfo``'s GRES, not from this machine),
``local_gpu``, ``cpu_only``. Slurm tools whose controller does not answer do not make a Slurm
machine: the kind then follows the local GPUs and a note says why.

GPUs come from NVML (the ``pynvml`` module of nvidia-ml-py); only when NVML is unavailable do we
fall back to ``torch.cuda`` (which also sees ROCm GPUs), and the notes say so. Each GPU is matched
to ``gpu_specs.yaml`` with :func:`toolkit.hardware.specs.resolve`; a GPU that does not match exactly
keeps ``spec_key=None`` and the reason. Memory is in bytes.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolkit.hardware.specs import UnknownGpuError, resolve

KINDS = ("cpu_only", "local_gpu", "slurm", "slurm_login")
SINFO_FORMAT = "%P|%G|%D"  # partition (default marked *), GRES per node, node count


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
class Partition:
    """One ``sinfo`` row: ``gres`` as Slurm prints it (``gpu:a100:8``, ``(null)``), GPUs per node
    parsed from it (0 when the partition has none, None when unreadable), node count."""

    name: str
    default: bool
    gres: str
    gpus_per_node: int | None
    nodes: int | None


@dataclass(frozen=True)
class SlurmInfo:
    """Slurm job facts from ``SLURM_*`` environment variables (``None`` where unset); outside a
    job, ``partitions`` from ``sinfo`` (empty when its controller did not answer)."""

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
    partitions: tuple[Partition, ...] = ()

    @property
    def cluster_gpus_per_node(self) -> int | None:
        """GPUs per node of the default partition (else the first) as sinfo reports them."""
        chosen = [p for p in self.partitions if p.default] or list(self.partitions[:1])
        return chosen[0].gpus_per_node if chosen else None


@dataclass
class Environment:
    """``kind``: cpu_only | local_gpu | slurm | slurm_login; ``source``: nvml | torch | none."""

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


def gres_gpus(gres: str) -> int | None:
    """GPUs per node in a GRES string: ``gpu:a100:8(S:0-1)`` -> 8, ``gpu:2,gpu:v100:1`` -> 3,
    ``(null)`` or no ``gpu`` entry -> 0, unreadable -> None."""
    total = 0
    for item in gres.split(","):
        item = item.split("(")[0].strip()
        if not item.startswith("gpu"):
            continue
        count = _int(item.rsplit(":", 1)[-1])
        if count is None:
            return None
        total += count
    return total


def parse_sinfo(text: str) -> tuple[Partition, ...]:
    """Rows of ``sinfo -h -o '%P|%G|%D'`` (one per partition and GRES; default marked ``*``)."""
    rows = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[0]:
            continue
        name, gres, nodes = parts
        rows.append(
            Partition(name.rstrip("*"), name.endswith("*"), gres, gres_gpus(gres), _int(nodes))
        )
    return tuple(rows)


def run_sinfo() -> tuple[str | None, str]:
    """``(stdout, "")`` when a controller answered ``sinfo``, else ``(None, why)``."""
    try:
        res = subprocess.run(
            ["sinfo", "-h", "-o", SINFO_FORMAT], capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired:
        return None, "sinfo got no answer in 5 s"
    except OSError as exc:
        return None, str(exc)
    if res.returncode != 0:
        return None, (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
    return res.stdout, ""


# ----------------------------------------------------------------------------- entry point


def detect(
    env: Mapping[str, str] | None = None,
    use_torch: bool = True,
    which: Callable[[str], str | None] = shutil.which,
    sinfo: Callable[[], tuple[str | None, str]] = run_sinfo,
) -> Environment:
    """Describe this machine. ``env`` defaults to ``os.environ``; ``use_torch=False`` skips the
    fallback; ``sinfo`` asks the controller (only when ``sinfo`` is on PATH outside a job)."""
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
    kind = None
    if slurm is not None and slurm.in_job:
        kind = "slurm"
    elif slurm is not None:
        out, why = sinfo()
        if out is None:
            notes.append(
                f"Slurm tools (sinfo) on PATH but no controller answers ({why}): not a Slurm "
                "machine for planning; launching follows the local GPUs"
            )
            slurm = None
        else:
            slurm = SlurmInfo(in_job=False, partitions=parse_sinfo(out))
            kind = "slurm_login"
            parts = ", ".join(
                f"{p.name}{'*' if p.default else ''} ({p.nodes} node(s), gres {p.gres})"
                for p in slurm.partitions
            )
            notes.append(
                "Slurm tools present, not inside an allocation (SLURM_JOB_ID unset): submit "
                f"with sbatch; partitions: {parts or 'none listed'}"
            )
            if gpus:
                notes.append(
                    "the GPUs listed are this machine's; jobs run on the compute nodes "
                    "(GPUs per node from sinfo's GRES)"
                )
    if kind is None:
        kind = "local_gpu" if gpus else "cpu_only"
    return Environment(kind=kind, gpus=gpus, source=source, slurm=slurm, notes=notes)
