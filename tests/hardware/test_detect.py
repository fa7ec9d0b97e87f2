"""detect(): the real machine, the fake pynvml, and Slurm from SLURM_* variables."""

from __future__ import annotations

import importlib

import pytest

from tests.hardware.conftest import MIB, device
from toolkit.hardware.detect import detect, gres_gpus, slurm_from_env


def _detect(**kwargs):
    kwargs.setdefault("use_torch", False)
    kwargs.setdefault("which", lambda name: None)
    return detect(**kwargs)


H100_PCIE_X2 = [
    device("NVIDIA H100 PCIe", 81559, 0x2331, uuid="GPU-aaaaaaaa-0000-0000-0000-000000000000"),
    device("NVIDIA H100 PCIe", 81559, 0x2331, uuid="GPU-bbbbbbbb-0000-0000-0000-000000000000"),
]


# ----------------------------------------------------------------------------- this machine


def test_detect_on_this_machine_without_a_driver_is_cpu_only() -> None:
    real = importlib.import_module("pynvml")
    try:
        real.nvmlInit()
    except real.NVMLError:
        pass
    else:
        real.nvmlShutdown()
        pytest.skip("NVML works on this machine")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch sees a GPU on this machine")
    env = detect(which=lambda name: None)
    assert env.kind == "cpu_only"
    assert env.source == "none"
    assert env.gpus == []
    assert env.notes[0].startswith("NVML unavailable: ")
    assert "(pynvml.NVMLError_" in env.notes[0]
    assert any(n.startswith("torch fallback") for n in env.notes)


# ----------------------------------------------------------------------------- fake NVML


def test_library_missing_is_cpu_only_with_note(fake_nvml) -> None:
    fake_nvml(init_error="LIBRARY_NOT_FOUND")
    env = _detect()
    assert (env.kind, env.source, env.gpus) == ("cpu_only", "none", [])
    assert env.notes == [
        "NVML unavailable: NVML shared library not found: no NVIDIA driver installed or visible "
        "(pynvml.NVMLError_LibraryNotFound)"
    ]


def test_library_missing_falls_back_to_torch_and_says_so(fake_nvml) -> None:
    pytest.importorskip("torch")
    fake_nvml(init_error="LIBRARY_NOT_FOUND")
    env = detect(which=lambda name: None)
    assert env.notes[0].startswith("NVML unavailable")
    assert any("torch" in note for note in env.notes[1:])
    assert env.source in ("torch", "none")


def test_two_h100_pcie_are_local_gpus_resolved(fake_nvml) -> None:
    fake_nvml(H100_PCIE_X2)
    env = _detect()
    assert (env.kind, env.source) == ("local_gpu", "nvml")
    assert [g.index for g in env.gpus] == [0, 1]
    for gpu in env.gpus:
        assert gpu.name == "NVIDIA H100 PCIe"
        assert gpu.spec_key == "h100-pcie"
        assert gpu.pci_device_id == 0x2331
        assert gpu.memory_total_bytes == 81559 * MIB
        assert gpu.spec_reason.startswith("matched by name")
    assert env.gpus[1].uuid.startswith("GPU-bbbbbbbb")
    assert env.notes == []


def test_generic_name_resolved_by_nvml_pci_id(fake_nvml) -> None:
    fake_nvml([device("NVIDIA H100", 95830, 0x2321)])
    (gpu,) = _detect().gpus
    assert gpu.spec_key == "h100-nvl"
    assert "PCI device id 0x2321" in gpu.spec_reason


def test_unmatched_gpu_is_listed_with_reason_not_guessed(fake_nvml) -> None:
    fake_nvml([device("NVIDIA H100", 81559, 0x2336), device("NVIDIA RTX A6000", 49140, 0x2230)])
    env = _detect()
    assert env.kind == "local_gpu"
    assert [g.spec_key for g in env.gpus] == [None, None]
    assert "ambiguous" in env.gpus[0].spec_reason
    assert "unknown GPU 'NVIDIA RTX A6000'" in env.gpus[1].spec_reason


def test_no_permission_at_init_gives_clear_note(fake_nvml) -> None:
    fake_nvml(init_error="NO_PERMISSION")
    env = _detect()
    assert env.kind == "cpu_only"
    (note,) = env.notes
    assert note.startswith("NVML unavailable: no permission to query the GPU")
    assert note.endswith("(pynvml.NVMLError_NoPermission)")


def test_no_permission_on_one_device_keeps_the_others(fake_nvml) -> None:
    blocked = dict(H100_PCIE_X2[1], errors={"nvmlDeviceGetHandleByIndex": "NO_PERMISSION"})
    fake_nvml([H100_PCIE_X2[0], blocked])
    env = _detect()
    assert [g.index for g in env.gpus] == [0]
    assert env.notes == [
        "GPU 1: NVML could not open it: no permission to query the GPU (check /dev/nvidia* "
        "permissions or the container runtime's GPU access) (pynvml.NVMLError_NoPermission)"
    ]


def test_field_errors_leave_the_gpu_listed(fake_nvml) -> None:
    flaky = dict(
        H100_PCIE_X2[0],
        errors={"nvmlDeviceGetMemoryInfo": "NO_PERMISSION", "nvmlDeviceGetUUID": "NOT_SUPPORTED"},
    )
    fake_nvml([flaky])
    (gpu,) = _detect().gpus
    assert gpu.memory_total_bytes is None and gpu.uuid is None
    assert gpu.spec_key == "h100-pcie"  # name and PCI id still decide


def test_driver_not_loaded_and_gpu_lost(fake_nvml) -> None:
    fake_nvml(init_error="DRIVER_NOT_LOADED")
    assert "kernel driver not loaded (pynvml.NVMLError_DriverNotLoaded)" in _detect().notes[0]
    lost = dict(H100_PCIE_X2[0], errors={"nvmlDeviceGetName": "GPU_IS_LOST"})
    fake_nvml([lost])
    env = _detect()
    assert env.gpus == [] and env.kind == "cpu_only"
    assert env.notes == [
        "GPU 0: NVML could not open it: the GPU fell off the bus or stopped responding "
        "(pynvml.NVMLError_GpuIsLost)"
    ]


def test_nvml_with_zero_gpus(fake_nvml) -> None:
    fake_nvml([])
    env = _detect()
    assert (env.kind, env.source) == ("cpu_only", "nvml")
    assert env.notes == ["NVML works but reports no GPUs"]


def test_nvml_shutdown_is_called(fake_nvml) -> None:
    module = fake_nvml(H100_PCIE_X2)
    _detect()
    assert module._state["initialized"] == 0


def test_cuda_visible_devices_note(fake_nvml, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml(H100_PCIE_X2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert "CUDA_VISIBLE_DEVICES='1'" in _detect().notes[0]


# ----------------------------------------------------------------------------- Slurm

SLURM_ENV = {
    "SLURM_JOB_ID": "123456",
    "SLURM_JOB_NAME": "pretrain",
    "SLURM_JOB_PARTITION": "gpu",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_JOB_NODELIST": "node[01-02]",
    "SLURM_NODEID": "0",
    "SLURM_NTASKS": "16",
    "SLURM_NTASKS_PER_NODE": "8",
    "SLURM_PROCID": "3",
    "SLURM_LOCALID": "3",
    "SLURM_CPUS_PER_TASK": "12",
    "SLURM_GPUS_PER_NODE": "h100:8",
    "SLURM_JOB_GPUS": "0,1,2,3,4,5,6,7",
}


def test_slurm_job_from_monkeypatched_environment(fake_nvml, monkeypatch) -> None:
    fake_nvml(H100_PCIE_X2)
    for name, value in SLURM_ENV.items():
        monkeypatch.setenv(name, value)
    env = _detect()
    assert env.kind == "slurm"
    assert len(env.gpus) == 2 and env.gpus[0].spec_key == "h100-pcie"
    slurm = env.slurm
    assert slurm is not None and slurm.in_job
    assert (slurm.job_id, slurm.job_name, slurm.partition) == ("123456", "pretrain", "gpu")
    assert (slurm.num_nodes, slurm.ntasks, slurm.proc_id, slurm.local_id) == (2, 16, 3, 3)
    assert slurm.gpus_per_node == 8 and slurm.gpus_per_node_raw == "h100:8"
    assert slurm.cpus_per_task == 12 and slurm.node_list == "node[01-02]"


def test_slurm_on_cpu_login_node_with_no_driver(fake_nvml) -> None:
    fake_nvml(init_error="LIBRARY_NOT_FOUND")
    env = _detect(env={"SLURM_JOB_ID": "7"})
    assert env.kind == "slurm" and env.gpus == []
    assert env.slurm is not None and env.slurm.job_id == "7" and env.slurm.num_nodes is None


def _sinfo_on_path(name: str) -> str | None:
    return "/usr/bin/sinfo" if name == "sinfo" else None


def test_sinfo_answering_outside_a_job_is_slurm_login(fake_nvml) -> None:
    # the sinfo reply is canned here; tests/slurm/test_detect.py asks a real controller
    fake_nvml(devices=H100_PCIE_X2)
    out = "gpu*|gpu:h100:8(S:0-1)|16\ncpu|(null)|4\n"
    env = _detect(env={}, which=_sinfo_on_path, sinfo=lambda: (out, ""))
    assert env.kind == "slurm_login"
    assert env.slurm is not None and not env.slurm.in_job
    assert [(p.name, p.default, p.gpus_per_node, p.nodes) for p in env.slurm.partitions] == [
        ("gpu", True, 8, 16),
        ("cpu", False, 0, 4),
    ]
    assert env.slurm.cluster_gpus_per_node == 8
    assert any("not inside an allocation" in note for note in env.notes)
    assert any("this machine's" in note for note in env.notes)  # the 2 local GPUs


def test_sinfo_without_a_controller_is_not_slurm(fake_nvml) -> None:
    fake_nvml(init_error="LIBRARY_NOT_FOUND")
    why = "slurm_load_partitions: Unable to contact slurm controller (connect failure)"
    env = _detect(env={}, which=_sinfo_on_path, sinfo=lambda: (None, why))
    assert env.kind == "cpu_only" and env.slurm is None
    assert any("no controller answers" in note and why in note for note in env.notes)


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [
        ("(null)", 0),
        ("gpu:a100:8(S:0-1)", 8),
        ("gpu:2,gpu:v100:1", 3),
        ("shard:8", 0),
        ("gpu", None),
    ],
)
def test_gres_gpus(gres: str, gpus: int | None) -> None:
    assert gres_gpus(gres) == gpus


def test_no_slurm_without_job_or_tools() -> None:
    assert slurm_from_env({}, which=lambda name: None) is None


@pytest.mark.parametrize(
    "variables,expected",
    [
        ({"SLURM_GPUS_ON_NODE": "4", "SLURM_GPUS_PER_NODE": "gpu:a100:8"}, 4),
        ({"SLURM_GPUS_PER_NODE": "gpu:a100:8"}, 8),
        ({"SLURM_GPUS_PER_NODE": "a100:2,v100:1"}, 3),
        ({"SLURM_GPUS_PER_NODE": "4"}, 4),
        ({"SLURM_GPUS_PER_NODE": "lots"}, None),
        ({}, None),
    ],
)
def test_gpus_per_node_parsing(variables: dict, expected: int | None) -> None:
    info = slurm_from_env({"SLURM_JOB_ID": "1", **variables}, which=lambda name: None)
    assert info is not None and info.gpus_per_node == expected
