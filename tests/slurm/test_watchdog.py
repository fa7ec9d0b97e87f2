"""The watchdog's Slurm mode and the USR1 path on real jobs with a 1-minute time limit (submitted
in the background when the cluster came up: tests/slurm/long_jobs.py): USR1 before the limit,
stop file, checkpoint, requeue, resume from that checkpoint; and a job killed at its limit,
requeued by the watchdog, resuming from its checkpoint. slurmctld checks limits and sends the
signal only every ~30 s, so how many attempts a job takes varies; each resume is checked."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.slurm.conftest import PY, scontrol_job
from tests.slurm.long_jobs import LIMIT_STEPS, LongJobs


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _finish(jobs: LongJobs, name: str) -> tuple[int, list[dict]]:
    proc = jobs.watchdogs[name]
    out, err = proc.communicate(timeout=240)
    events = _events(jobs.work / f"wd-{name}")
    assert proc.returncode == 0, (err[-2000:], events)
    return proc.returncode, events


def _resumes(log: str) -> list[int]:
    """The step each later attempt resumed from; asserts it is the last step saved before it."""
    attempts = log.split("resumed from checkpoint step ")
    resumed = []
    for before, after in zip(attempts, attempts[1:], strict=False):
        saved = [int(s) for s in re.findall(r"^step (\d+) ", before, re.M)]
        step = int(after.split()[0])
        assert saved and step == saved[-1], (saved[-3:], step)
        resumed.append(step)
    return resumed


def test_usr1_stop_file_checkpoint_requeue_resume(long_jobs: LongJobs) -> None:
    rc, events = _finish(long_jobs, "stop")
    assert rc == 0, events
    # the job requeued itself after the stop request; the watchdog saw it run through to success
    assert [(e["cls"], e["subclass"]) for e in events if e["event"] == "exit"] == [
        ("success", "finished")
    ]
    assert not [e for e in events if e["event"] == "restart"]
    job = scontrol_job(long_jobs.stop_job)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0")
    restarts = int(job["Restarts"])
    assert restarts >= 1
    folder = long_jobs.work / ".labcoat" / "runs" / "stopper"
    log = (folder / f"slurm-{long_jobs.stop_job}.out").read_text()
    assert log.count("USR1: time limit in about 50 s") == restarts
    stops = [int(n) for n in re.findall(r"stop requested: checkpoint at step (\d+) saved", log)]
    assert log.count("requeueing") == restarts == len(stops)
    assert _resumes(log) == stops
    assert "done at step 40" in log
    show = subprocess.run(
        [PY, "-m", "toolkit.runs", "run", "show", "stopper", "--format", "json"],
        cwd=long_jobs.work, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    run = json.loads(show.stdout)
    assert (run["status"], run["exit_code"]) == ("succeeded", 0)
    assert run["options"]["requeues"] == restarts and f"requeued {restarts}x" in run["note"]


def test_job_past_its_time_limit_is_requeued_by_the_watchdog_and_resumes(
    long_jobs: LongJobs,
) -> None:
    rc, events = _finish(long_jobs, "limit")
    assert rc == 0, events
    exits = [(e["cls"], e["subclass"]) for e in events if e["event"] == "exit"]
    restarts = [e for e in events if e["event"] == "restart"]
    assert len(restarts) >= 1
    assert exits == [("environment", "slurm-timeout")] * len(restarts) + [("success", "finished")]
    assert all((r["via"], r["ok"]) == ("scontrol requeue", True) for r in restarts)
    job = scontrol_job(long_jobs.timeout_job)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0")
    assert int(job["Restarts"]) == len(restarts)
    log = (long_jobs.work / f"limit-{long_jobs.timeout_job}.out").read_text()
    killed = re.findall(r"\*\*\* JOB \d+ ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT", log)
    assert len(killed) == len(restarts)
    # launched as `hardware launch` wrote it: torchrun through the interpreter named
    assert (
        f"srun --kill-on-bad-exit=1 {PY} -m torch.distributed.run"
        in (long_jobs.work / "limit.sbatch").read_text()
    )
    resumed = _resumes(log)
    assert len(resumed) == len(restarts) and all(0 < r < LIMIT_STEPS for r in resumed)
    assert f"done at step {LIMIT_STEPS}" in log
    assert "requeueing" not in log  # the trainer ignored the stop file: only the watchdog requeued
    state = json.loads((long_jobs.work / "wd-limit" / "state.json").read_text())
    assert state["latest_checkpoint"] == str(long_jobs.work / "limit.json")
