"""Fault injection with a real child training process (CPU, torch): every case end to end
through ``python -m toolkit.watchdog run``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.watchdog.conftest import (
    Result,
    fault_env,
    read_events,
    run_watchdog,
    watchdog_argv,
)


def assert_nothing_lost(res: Result, fault_step: int | None = None) -> None:
    """Every attempt log is there and non-empty; every checkpoint an event named still exists."""
    logs = sorted((res.run_dir / "logs").glob("attempt-*.log"))
    assert len(logs) == len(res.of("attempt_start"))
    for log in logs:
        assert log.stat().st_size > 0, log
    if fault_step is not None:
        assert f"step={fault_step} " in logs[0].read_text()
    for ev in res.events:
        for key in ("checkpoint",):
            if ev.get(key):
                assert Path(ev[key]).exists(), ev
    assert (res.run_dir / "experiment-context.md").is_file()
    assert (res.run_dir / "state.json").is_file()


def test_sigkill_mid_run_restarts_from_latest_checkpoint_and_finishes(work):
    res = run_watchdog(work, "sigkill", 5)
    assert res.rc == 0, res.stderr
    first, last = res.exits()
    assert (first["cls"], first["subclass"], first["restart"]) == ("environment", "sigkill", True)
    assert last["cls"] == "success"
    second = res.of("attempt_start")[1]
    assert second["checkpoint"].endswith("checkpoint-4.pt")
    assert second["argv"][-2:] == ["--resume", second["checkpoint"]]
    assert res.of("restart")[0]["latency_s"] < 2.0
    assert sorted(p.name for p in (work / "ckpt").iterdir()) == [
        f"checkpoint-{n}.pt" for n in (2, 4, 6, 8)
    ]
    assert_nothing_lost(res, 5)
    assert "training finished" in (res.run_dir / "logs" / "attempt-002.log").read_text()


def test_half_written_latest_checkpoint_is_skipped_for_the_previous_one(work):
    res = run_watchdog(work, "half_ckpt", 5)
    assert res.rc == 0, res.stderr
    skipped = res.of("checkpoint_skipped")
    assert skipped and skipped[0]["checkpoint"].endswith("checkpoint-5.pt")
    assert "central directory" in skipped[0]["reason"]
    assert res.of("attempt_start")[1]["checkpoint"].endswith("checkpoint-4.pt")
    assert (work / "ckpt" / "checkpoint-5.pt").exists()  # never deleted
    assert_nothing_lost(res, 5)


def test_nccl_timeout_text_and_exit_1_is_restarted(work):
    res = run_watchdog(work, "nccl", 3)
    assert res.rc == 0, res.stderr
    first = res.exits()[0]
    assert (first["cls"], first["subclass"], first["returncode"]) == (
        "environment",
        "nccl-timeout",
        1,
    )
    assert "Watchdog caught collective operation timeout" in first["evidence"][0]
    assert_nothing_lost(res, 3)


def test_hang_is_killed_and_restarted_within_timeout_plus_1s(work):
    res = run_watchdog(work, "hang", 3, True, "--hang-timeout", "2")
    assert res.rc == 0, res.stderr
    hang = res.of("hang_detected")[0]
    assert res.exits()[0]["subclass"] == "hang"
    restart = res.of("attempt_start")[1]
    since_last_activity = hang["idle_s"] + (restart["time"] - hang["time"])
    assert since_last_activity <= 2 + 1.0, (hang, restart)
    assert_nothing_lost(res, 3)


def test_typeerror_is_code_and_not_restarted(work):
    res = run_watchdog(work, "typeerror", 3)
    assert res.rc == 1
    (only,) = res.exits()
    assert (only["cls"], only["subclass"], only["restart"]) == ("code", "python-exception", False)
    assert only["evidence"][0].startswith("TypeError")
    assert len(res.of("attempt_start")) == 1
    assert_nothing_lost(res, 3)
    context = (res.run_dir / "experiment-context.md").read_text()
    assert "code / python-exception" in context and "TypeError" in context


def test_cuda_oom_text_is_resources_and_not_restarted(work):
    res = run_watchdog(work, "oom", 3)
    assert res.rc == 1
    (only,) = res.exits()
    assert (only["cls"], only["subclass"], only["restart"]) == ("resources", "cuda-oom", False)
    assert len(res.of("attempt_start")) == 1
    assert_nothing_lost(res, 3)


def test_nan_loss_is_numerical_and_the_run_is_stopped(work):
    res = run_watchdog(work, "nan", 3, steps=200)
    assert res.rc == 1
    (only,) = res.exits()
    assert (only["cls"], only["subclass"], only["restart"]) == ("numerical", "nan-loss", False)
    assert "loss=nan" in only["evidence"][0]
    assert_nothing_lost(res, 3)


def test_same_failure_at_same_step_twice_is_code(work):
    res = run_watchdog(work, "nccl", 3, False)
    assert res.rc == 1
    first, second = res.exits()
    assert first["cls"] == "environment"
    assert (second["cls"], second["subclass"], second["restart"]) == ("code", "repeated", False)
    assert_nothing_lost(res, 3)


def test_restart_limit_stops_and_reports(work):
    # dies 3 steps after every (re)start, at a later step each time: never "repeated"
    res = run_watchdog(work, "sigkill_every", 3, False, "--max-restarts", "1", steps=20)
    assert res.rc == 1
    assert [e["subclass"] for e in res.exits()] == ["sigkill", "sigkill"]
    assert len(res.of("attempt_start")) == 2
    stop = res.of("watchdog_stop")[-1]
    assert stop["status"] == "stopped" and "limit 1" in stop["reason"]
    assert_nothing_lost(res, 3)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_sigterm_to_watchdog_is_forwarded_to_the_child_group(work):
    argv = watchdog_argv(work, steps=400, train_args=("--step-time", "0.05"))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    log = work / "run" / "logs" / "attempt-001.log"
    _wait_for(lambda: log.exists() and "step=2 " in log.read_text())
    child_pid = [e for e in read_events(work / "run") if e["event"] == "attempt_start"][0]["pid"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    events = read_events(work / "run")
    assert any(e["event"] == "signal_received" and e["signal"] == "SIGTERM" for e in events)
    _wait_for(
        lambda: (
            not Path(f"/proc/{child_pid}").exists()
            or Path(f"/proc/{child_pid}/stat").read_text().split(")")[1].split()[0] == "Z"
        ),
        10,
    )


def test_restarted_watchdog_reattaches_to_the_running_child(work):
    argv = watchdog_argv(work, steps=60, train_args=("--step-time", "0.05"))
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    log = work / "run" / "logs" / "attempt-001.log"
    _wait_for(lambda: log.exists() and "step=2 " in log.read_text())
    first.kill()  # the watchdog dies; the child lives on in its own session
    first.wait()
    second = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=work)
    events = read_events(work / "run")
    starts = [e for e in events if e["event"] == "watchdog_start"]
    assert [s["mode"] for s in starts] == ["new", "reattach"]
    assert second.returncode == 0, second.stderr
    assert [e for e in events if e["event"] == "exit"][-1]["cls"] == "success"
    assert len([e for e in events if e["event"] == "attempt_start"]) == 1


def test_status_prints_state_and_events(work):
    run_watchdog(work, "oom", 3)
    out = subprocess.run(
        [os.sys.executable, "-m", "toolkit.watchdog", "status", str(work / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "status: stopped" in out.stdout and "resources/cuda-oom" in out.stdout


def test_restarted_watchdog_resumes_after_the_child_ended_unwatched(work):
    argv = watchdog_argv(work, steps=12, train_args=("--step-time", "0.05"))
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    log = work / "run" / "logs" / "attempt-001.log"
    _wait_for(lambda: log.exists() and "step=2 " in log.read_text())
    first.kill()
    first.wait()
    _wait_for(lambda: (work / "run" / "logs" / "attempt-001.exit.json").exists())  # child ran on
    second = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=work)
    events = read_events(work / "run")
    assert [s["mode"] for s in events if s["event"] == "watchdog_start"] == ["new", "resume"]
    assert second.returncode == 0, second.stderr
    (exit_event,) = [e for e in events if e["event"] == "exit"]
    assert (exit_event["cls"], exit_event["returncode"]) == ("success", 0)
    assert "training finished" in log.read_text()


def test_resume_through_an_environment_variable(work):
    argv = watchdog_argv(work)
    i = argv.index("--resume")
    argv[i : i + 2] = ["--resume-env", "RESUME_FROM"]
    env = fault_env(work, "sigkill", 5)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, cwd=work)
    assert proc.returncode == 0, proc.stderr
    second = (work / "run" / "logs" / "attempt-002.log").read_text()
    assert "resumed from" in second and "checkpoint-4.pt at step=4" in second
