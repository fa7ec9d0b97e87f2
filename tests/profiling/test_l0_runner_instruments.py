"""l0_runner with its instruments wired in: GPU paths through the fake dcgmi and fake pynvml in a
real subprocess, and the honest "unavailable" path on this machine (no driver, no dcgmi)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "tests" / "fakes"

H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "memory_total": 85520809984,
    "pci_device_id": 0x2330,
    "uuid": "GPU-11111111-2222-3333-4444-555555555555",
    "series": {
        "util_gpu_pct": [90, 100],
        "memory_used_bytes": [40 * 2**30],
        "power_mw": [600000, 700000],
        "sm_clock_mhz": [1500],
        "temperature_c": [60, 70],
    },
    "max_clock_mhz": {"sm": 1980},
}


def run(*args: str, env: dict[str, str]) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.l0_runner", "--steps", "25", "--layer-steps", "4",
         "--format", "json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}
    env.pop("PYTHONPATH", None)
    return env


def test_gpu_sampling_through_fakes_reaches_the_report_and_the_gap_analysis():
    env = base_env()
    env["PATH"] = (
        f"{FAKES / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    )
    env["PYTHONPATH"] = str(FAKES)
    env["FAKE_PYNVML_SCENARIO"] = json.dumps({"devices": [H100]})
    code, r = run("--gpu-sampling", "on", env=env)
    assert code == 0, r["checks"]
    nvml = r["nvml"]
    assert nvml["available"] and nvml["gpus"][0]["metrics"]["power_w"]["mean"] > 0
    assert r["dcgm"]["available"] and r["dcgm"]["ticks_after_warmup"] > 0
    act = r["gpu_activity"]
    assert 0 < act["tca"] <= 1 and 0 < act["sm_active"] <= 1
    assert act["sm_clock_ratio"] == pytest.approx(
        1500 / 1980
    )  # the fake's constant SM clock over its max
    assert any("averaged over the node's GPUs" in n for n in act["not_measured"])  # CPU training
    # the gap analysis saw the clock at 76% of max and flags it with the numbers
    findings = {f["name"]: f for f in r["gaps"]["findings"]}
    assert (
        "clock throttling" in findings and "76% of max" in findings["clock throttling"]["evidence"]
    )


def test_sampling_on_without_driver_or_dcgmi_says_why_and_carries_on():
    env = base_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    code, r = run("--gpu-sampling", "on", env=env)
    assert code == 0 and r["verdict"] == "PASS"
    assert r["nvml"]["available"] is False and "NVML" in r["nvml"]["reason"]
    assert r["dcgm"]["available"] is False and "dcgmi" in r["dcgm"]["reason"]
    reasons = r["gpu_activity"]["not_measured"]
    assert any(
        n.startswith("TCA: DCGM unavailable:") and n.endswith("TCA not measured") for n in reasons
    )
    assert r["gpu_activity"]["tca"] is None  # no number where nothing was measured


def test_cpu_default_report_carries_memory_layers_and_gaps():
    code, r = run(env=base_env())
    assert code == 0
    assert r["nvml"] is None and r["dcgm"] is None and r["gpu_activity"] is None
    assert any("GPU sampling (NVML, DCGM): off" in n for n in r["notes"])
    assert r["memory"]["rss_peak_bytes"] >= r["memory"]["rss_start_bytes"] > 0
    assert r["layers"]["steps"] == 4 and any(
        row["name"] == "blocks.0.attn" for row in r["layers"]["rows"]
    )
    assert set(r["gaps"]["phases_ms"]) == {"data", "forward", "backward", "optimizer", "other"}
