"""Free-GPU selection against the fake pynvml, and ``python -m toolkit.hardware free-gpus``."""

from __future__ import annotations

import json

import pytest

from tests.hardware.conftest import device, run_cli, scenario
from toolkit.errors import UnavailableError
from toolkit.hardware.gpu_select import cuda_env_prefix, select_free_gpus

GIB = 1024**3


def load(util: list[int], used_gib: list[float]) -> dict:
    return {
        "util_gpu_pct": util,
        "util_memory_pct": [0] * len(util),
        "memory_used_bytes": [int(g * GIB) for g in used_gib],
    }


def h100(series: dict, **extra: object) -> dict:
    return device("NVIDIA H100 PCIe", 81559, 0x2331, series=series, **extra)


IDLE = load([0], [0.5])
BUSY_UTIL = load([97], [2])
BUSY_MEM = load([0], [40])
FLICKER = load([0, 0, 80], [1, 1, 1])  # busy in one of three samples


def test_busy_gpus_excluded(fake_nvml) -> None:
    fake_nvml([h100(BUSY_UTIL), h100(IDLE), h100(BUSY_MEM), h100(IDLE)])
    sel = select_free_gpus(count=2, samples=1, interval_s=0)
    assert sel.enough and sel.chosen == [1, 3] and sel.value == "1,3"
    reasons = {g.index: g.reason for g in sel.gpus}
    assert "utilization 97% > 10%" in reasons[0]
    assert "memory used" in reasons[2] and "> 10%" in reasons[2]
    assert reasons[1] == "free"


def test_worst_sample_counts(fake_nvml) -> None:
    fake_nvml([h100(FLICKER), h100(IDLE)])
    assert select_free_gpus(count=1, samples=1, interval_s=0).gpus[0].free
    fake_nvml([h100(FLICKER), h100(IDLE)])
    sel = select_free_gpus(count=2, samples=3, interval_s=0)
    assert not sel.gpus[0].free and sel.chosen == [1] and not sel.enough and sel.value == ""


def test_least_loaded_win_and_thresholds(fake_nvml) -> None:
    fake_nvml([h100(load([5], [4])), h100(load([0], [0])), h100(load([1], [1]))])
    sel = select_free_gpus(count=2, samples=1, interval_s=0)
    assert sel.chosen == [1, 2]
    fake_nvml([h100(load([5], [4])), h100(load([0], [0])), h100(load([1], [1]))])
    strict = select_free_gpus(count=1, max_mem_used_pct=0, max_util_pct=0, samples=1)
    assert strict.chosen == [1]


def test_unreadable_gpu_is_not_free(fake_nvml) -> None:
    fake_nvml([h100(IDLE, errors={"nvmlDeviceGetMemoryInfo": "NO_PERMISSION"}), h100({})])
    sel = select_free_gpus(count=1, samples=1)
    assert sel.chosen == []
    assert "memory unreadable" in sel.gpus[0].reason and "NoPermission" in sel.gpus[0].reason
    assert "utilization unreadable" in sel.gpus[1].reason


def test_nvml_unavailable_raises_with_reason(fake_nvml) -> None:
    fake_nvml(init_error="DRIVER_NOT_LOADED")
    with pytest.raises(UnavailableError, match="NVML unavailable: NVIDIA kernel driver not loaded"):
        select_free_gpus()


def test_uuid_value_and_env_prefix(fake_nvml) -> None:
    fake_nvml([h100(BUSY_UTIL), h100(IDLE, uuid="GPU-abc")])
    sel = select_free_gpus(count=1, samples=1)
    assert sel.uuid_value == "GPU-abc"
    assert cuda_env_prefix(sel.value) == "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1"


# ----------------------------------------------------------------------------- CLI


def test_cli_prints_value_on_stdout_table_on_stderr() -> None:
    gpus = [h100(BUSY_UTIL), h100(IDLE), h100(IDLE)]
    result = run_cli("free-gpus", "--count", "2", "--interval-s", "0", fake_scenario=scenario(gpus))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1,2\n"
    assert "utilization 97% > 10%" in result.stderr and "mem used %" in result.stderr


def test_cli_too_few_free_exits_1_with_reasons() -> None:
    gpus = [h100(BUSY_UTIL), h100(BUSY_MEM), h100(IDLE)]
    result = run_cli("free-gpus", "--count", "2", "--interval-s", "0", fake_scenario=scenario(gpus))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "need 2 free GPU(s), found 1" in result.stderr
    assert "utilization 97% > 10%" in result.stderr and "memory used 50.2% > 10%" in result.stderr


def test_cli_nvml_unavailable_exits_1_with_clear_message() -> None:
    result = run_cli("free-gpus", fake_scenario=scenario(init_error="LIBRARY_NOT_FOUND"))
    assert result.returncode == 1 and result.stdout == ""
    assert "NVML unavailable: NVML shared library not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_json() -> None:
    gpus = [h100(BUSY_UTIL), h100(IDLE)]
    result = run_cli(
        "free-gpus", "--format", "json", "--interval-s", "0", fake_scenario=scenario(gpus)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cuda_visible_devices"] == "1" and data["enough"] is True
    assert [g["free"] for g in data["gpus"]] == [False, True]


@pytest.mark.parametrize(
    "args", [["--count", "0"], ["--max-util-pct", "150"], ["--max-mem-used-pct", "x"]]
)
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli("free-gpus", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
