"""Gap analyzer rules: each fires on its evidence with the numbers, stays quiet below threshold."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.profiling.instruments.gap_analyzer import GpuActivity, analyze, from_runtime_report

ROOT = Path(__file__).resolve().parents[2]
BALANCED = {"data": 1.0, "forward": 30.0, "backward": 60.0, "optimizer": 9.0}  # 100 ms, healthy


def names(g) -> list[str]:
    return [f.name for f in g.findings]


def test_healthy_step_has_no_findings_and_lists_unmeasured_signals():
    g = analyze(100.0, BALANCED)
    assert g.findings == []
    assert g.phases_ms["other"] == 0 and g.phase_share["backward"] == pytest.approx(0.6)
    assert "TCA: no data given" in g.not_measured and "MFU: no data given" in g.not_measured


def test_data_wait_optimizer_and_other_time():
    g = analyze(100.0, {"data": 25.0, "forward": 20.0, "backward": 30.0, "optimizer": 10.0})
    assert names(g) == ["input pipeline", "time outside the step's phases"]
    assert "25 ms = 25% of the 100 ms step" in g.findings[0].evidence
    g = analyze(100.0, {"data": 1.0, "forward": 25.0, "backward": 50.0, "optimizer": 24.0})
    assert names(g) == ["optimizer step"]


def test_thresholds_are_boundaries():
    just_below = {"data": 9.9, "forward": 30.0, "backward": 60.1, "optimizer": 0.0}
    assert "input pipeline" not in names(analyze(100.0, just_below))
    at = {"data": 10.0, "forward": 30.0, "backward": 60.0, "optimizer": 0.0}
    assert "input pipeline" in names(analyze(100.0, at))


def test_slow_backward():
    g = analyze(100.0, {"data": 0.0, "forward": 20.0, "backward": 75.0, "optimizer": 5.0})
    assert names(g) == ["slow backward"] and "3.8x forward" in g.findings[0].evidence


def test_gpu_activity_rules_and_ranking():
    host_bound = GpuActivity(gr_active=0.55, sm_active=0.5, tca=0.3)
    g = analyze(100.0, BALANCED, mfu=0.2, activity=host_bound)
    assert names(g)[0] == "GPU idle: host-bound" and g.findings[0].score == pytest.approx(0.45)

    no_tensor = GpuActivity(gr_active=0.95, sm_active=0.85, tca=0.05, dram_active=0.3)
    g = analyze(100.0, BALANCED, mfu=0.05, activity=no_tensor)
    assert names(g) == ["work not on tensor cores"]
    assert "SM active 85% but tensor pipes active 5%" in g.findings[0].evidence

    busy_tensor = GpuActivity(gr_active=0.97, sm_active=0.9, tca=0.7)
    g = analyze(100.0, BALANCED, mfu=0.2, activity=busy_tensor)
    assert names(g) == ["tensor cores busy with little model work"]
    assert g.findings[0].score == pytest.approx(0.5)

    small_kernels = GpuActivity(gr_active=0.95, sm_active=0.3, tca=0.25)
    assert names(analyze(100.0, BALANCED, activity=small_kernels)) == [
        "kernels do not fill the GPU"
    ]

    bandwidth = GpuActivity(gr_active=0.95, sm_active=0.8, tca=0.25, dram_active=0.8)
    assert names(analyze(100.0, BALANCED, activity=bandwidth)) == ["memory-bandwidth bound"]


def test_clock_throttling_with_reasons():
    act = GpuActivity(sm_clock_ratio=0.7, power_w=698.0, throttle_reasons=["SW power cap"])
    g = analyze(100.0, BALANCED, activity=act)
    assert names(g) == ["clock throttling"]
    assert "70% of max, power 698 W; reasons: SW power cap" in g.findings[0].evidence


def test_a_rule_needing_an_unmeasured_signal_does_not_fire():
    g = analyze(
        100.0, BALANCED, mfu=0.1, activity=GpuActivity(tca=None, sm_active=0.9, gr_active=0.95)
    )
    assert "tensor cores busy with little model work" not in names(g)
    assert "work not on tensor cores" not in names(g)
    reason = GpuActivity(not_measured=["TCA: DCGM unavailable: dcgmi not found; TCA not measured"])
    assert (
        analyze(100.0, BALANCED, activity=reason)
        .not_measured[0]
        .startswith("TCA: DCGM unavailable")
    )


def test_bad_inputs():
    with pytest.raises(InputError, match="step_ms"):
        analyze(0.0, BALANCED)
    with pytest.raises(InputError, match="training.times.mean_ms"):
        from_runtime_report({"training": {"times": None}}, "r.json")


def test_cli_on_a_real_runner_report(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.l0_runner", "--steps", "20", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = tmp_path / "report.json"
    report.write_text(run.stdout)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit.profiling.gap_analyzer",
            "analyze",
            str(report),
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    g = json.loads(proc.stdout)
    assert set(g["phases_ms"]) == {"data", "forward", "backward", "optimizer", "other"}
    assert g["step_ms"] == pytest.approx(json.loads(run.stdout)["training"]["times"]["mean_ms"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.gap_analyzer", "analyze", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
