"""``python -m toolkit.hardware`` as a user runs it (subprocess, sys.executable)."""

from __future__ import annotations

import json

import pytest

from tests.hardware.conftest import device, run_cli, scenario
from tests.hardware.test_specs_data import REQUIRED_KEYS


def test_specs_json_lists_every_required_gpu_with_source() -> None:
    result = run_cli("specs", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_key = {row["key"]: row for row in rows}
    assert set(REQUIRED_KEYS) <= set(by_key)
    for row in rows:
        assert row["source"].startswith("https://")
        assert row["peak_tflops"]["fp32"] > 0
        assert {"name", "memory_gib", "memory_bandwidth_gbs", "notes", "aliases"} <= set(row)
    assert by_key["h100-sxm"]["peak_tflops"]["bf16"] == 989.4
    assert by_key["h100-sxm"]["pci_device_ids"] == ["0x2330"]


def test_specs_table_has_units_and_rows() -> None:
    result = run_cli("specs")
    assert result.returncode == 0
    header = result.stdout.splitlines()[0]
    for column in ("key", "mem GiB", "GB/s", "bf16 TF", "fp8 TF"):
        assert column in header
    assert any(line.startswith("l40s ") for line in result.stdout.splitlines())
    assert "dense peak TFLOP/s" in result.stdout


def test_specs_one_gpu_by_reported_name() -> None:
    result = run_cli("specs", "--gpu", "NVIDIA L40S", "--format", "json")
    assert result.returncode == 0
    (row,) = json.loads(result.stdout)
    assert row["key"] == "l40s"
    table = run_cli("specs", "--gpu", "nvidia h100 pcie")
    assert "source: https://" in table.stdout and "h100-pcie" in table.stdout


@pytest.mark.parametrize("name", ["NVIDIA A1000", "H100"])
def test_specs_unknown_or_ambiguous_gpu_exits_2_with_one_line(name: str) -> None:
    result = run_cli("specs", "--gpu", name)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("python -m toolkit.hardware: error: ")
    assert "--peak-tflops" in line


def test_help_explains_units() -> None:
    top = run_cli("--help")
    specs = run_cli("specs", "--help")
    detect = run_cli("detect", "--help")
    assert top.returncode == specs.returncode == detect.returncode == 0
    for text in ("GiB", "GB/s", "TFLOP/s", "sparsity"):
        assert text in specs.stdout
    assert "cpu_only" in detect.stdout and "NVML" in detect.stdout


def test_missing_command_is_usage_error() -> None:
    assert run_cli().returncode == 2


def test_detect_json_with_two_fake_h100_pcie() -> None:
    gpus = [device("NVIDIA H100 PCIe", 81559, 0x2331), device("NVIDIA H100 PCIe", 81559, 0x2331)]
    result = run_cli("detect", "--format", "json", fake_scenario=scenario(gpus))
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert (env["kind"], env["source"]) == ("local_gpu", "nvml")
    assert [g["spec_key"] for g in env["gpus"]] == ["h100-pcie", "h100-pcie"]
    assert [g["pci_device_id"] for g in env["gpus"]] == ["0x2331", "0x2331"]  # as `specs` writes it


def test_detect_table_with_fake_no_permission() -> None:
    result = run_cli("detect", fake_scenario=scenario(init_error="NO_PERMISSION"))
    assert result.returncode == 0
    assert "NVMLError_NoPermission" in result.stdout
    assert result.stdout.startswith("kind: ")


def test_detect_here_for_real() -> None:
    """Whatever this machine is, detect exits 0 and prints valid JSON with a known kind."""
    result = run_cli("detect", "--format", "json")
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert env["kind"] in ("cpu_only", "local_gpu", "slurm")
    if env["source"] == "none":
        assert env["kind"] == "cpu_only" and env["notes"][0].startswith("NVML unavailable")
