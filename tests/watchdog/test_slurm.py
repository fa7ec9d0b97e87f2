"""Slurm mode against the fake squeue / sacct / scontrol (real output formats), for the faults a
real cluster cannot produce on demand: NCCL timeouts, preemption, hung jobs, and sacct answers
(the test cluster has no accounting storage). The watchdog on real jobs (USR1, time limit,
requeue, resume): tests/slurm/test_watchdog.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.watchdog.conftest import FAKE_BIN, read_events
from toolkit.watchdog.slurm import classify_slurm, parse_sacct

NCCL = (Path(__file__).with_name("fixtures") / "nccl_timeout.log").read_text()
TYPEERROR = (Path(__file__).with_name("fixtures") / "typeerror.log").read_text()


def run_slurm(tmp_path: Path, segments: list[list[str]], log_text: str, *extra: str):
    state = tmp_path / "slurm.json"
    state.write_text(json.dumps({"jobs": {"4242": {"segments": segments, "segment": 0, "pos": 0}}}))
    log = tmp_path / "slurm-4242.out"
    log.write_text(log_text)
    calls = tmp_path / "calls.jsonl"
    env = {
        **os.environ,
        "PATH": f"{FAKE_BIN}:{os.environ['PATH']}",
        "FAKE_SLURM_STATE": str(state),
        "FAKE_SLURM_LOG": str(calls),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit.watchdog",
            "run",
            "--run-dir",
            str(tmp_path / "run"),
            "--slurm-job",
            "4242",
            "--slurm-log",
            str(log),
            "--poll",
            "0.05",
            "--backoff",
            "0.01",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    called = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return proc, read_events(tmp_path / "run"), called


def test_failed_with_nccl_text_is_requeued_then_completes(tmp_path):
    proc, events, calls = run_slurm(
        tmp_path,
        [["PENDING", "RUNNING", "FAILED 1:0"], ["PENDING", "RUNNING", "COMPLETED 0:0"]],
        "step=10 loss=1\n" + NCCL,
    )
    assert proc.returncode == 0, proc.stderr
    exits = [e for e in events if e["event"] == "exit"]
    assert [(e["cls"], e["subclass"]) for e in exits] == [
        ("environment", "nccl-timeout"),
        ("success", "finished"),
    ]
    assert ["scontrol", "requeue", "4242"] in calls
    assert ["squeue", "-j", "4242", "-h", "-t", "all", "-O", "State:|,RestartCnt:|"] in calls
    assert ["sacct", "-j", "4242", "-n", "-P", "-o", "JobID,State,ExitCode"] in calls


def test_failed_with_typeerror_is_not_requeued(tmp_path):
    proc, events, calls = run_slurm(
        tmp_path, [["RUNNING", "FAILED 1:0"], ["COMPLETED 0:0"]], TYPEERROR
    )
    assert proc.returncode == 1
    assert [e["cls"] for e in events if e["event"] == "exit"] == ["code"]
    assert not any(c[0] == "scontrol" for c in calls)


def test_preempted_is_requeued_and_cancelled_stops(tmp_path):
    proc, events, calls = run_slurm(
        tmp_path, [["RUNNING", "PREEMPTED 0:15"], ["RUNNING", "CANCELLED 0:15"]], ""
    )
    assert proc.returncode == 1
    exits = [e for e in events if e["event"] == "exit"]
    assert [(e["cls"], e["subclass"]) for e in exits] == [
        ("environment", "slurm-preempted"),
        ("unknown", "cancelled"),
    ]
    assert sum(c[0] == "scontrol" for c in calls) == 1


def test_hung_running_job_is_requeued(tmp_path):
    proc, events, calls = run_slurm(
        tmp_path,
        [["RUNNING"], ["RUNNING", "COMPLETED 0:0"]],
        "step=1 loss=1\n",
        "--hang-timeout",
        "0.5",
        "--startup-grace",
        "0.5",
    )
    assert proc.returncode == 0, proc.stderr
    assert any(e["event"] == "hang_detected" for e in events)
    assert ["scontrol", "requeue", "4242"] in calls


def test_parse_sacct_real_format():
    text = "4242|CANCELLED by 1000|0:15\n4242.batch|CANCELLED|0:15\n4242.extern|COMPLETED|0:0\n"
    assert parse_sacct(text, "4242") == ("CANCELLED", -15)
    assert parse_sacct("4242|FAILED|2:0\n4242.batch|FAILED|2:0\n", "4242") == ("FAILED", 2)
    assert parse_sacct("", "4242") is None
    oom = classify_slurm("OUT_OF_MEMORY", -9, "")
    assert (oom.cls, oom.restart) == ("environment", True)
