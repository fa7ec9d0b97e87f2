"""Jobs with a 1-minute time limit, for tests/slurm/test_watchdog.py. They take a minute or two of
wall time, so tests/slurm/cluster.py submits them in the background as soon as the cluster is up
and they run while the rest of the suite does; the tests only wait for the end and check it.

``two-node``: a `hardware launch --nodes 2` script (torchrun rendezvous across the cluster's
two slurmd nodes) running one gloo all-reduce.
``stopper``: a run in the registry whose trainer stops on USR1 (stop file, checkpoint, exit 0);
the batch script requeues it and it resumes from the checkpoint. ``limit``: a `hardware launch`
script whose trainer ignores the stop file and is killed at its time limit (TIMEOUT); the
watchdog requeues it and it resumes from its checkpoint. A watchdog supervises each job.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

PY = sys.executable
TRAINER = Path(__file__).with_name("trainer.py")
DDP_CHECK = Path(__file__).with_name("ddp_check.py")
TESTS = ("test_watchdog.py", "test_launch.py")  # the test files that use these jobs
LIMIT_STEPS = 100  # 100 s of work: more than one attempt can do (killed 60-90 s after start,
#                    slurmctld checks limits every 30 s), less than two


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BeginTimeReleaser(threading.Thread):
    """Slurm holds a requeued job for about 120 s (Reason=BeginTime) before it may start again;
    this thread lets the named jobs start at once (``scontrol update JobId=J StartTime=now``, an
    operator action) so the tests need not sit out the hold. The requeue itself is Slurm's."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.jobs: set[str] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for job in list(self.jobs):
                res = subprocess.run(
                    ["squeue", "-j", job, "-h", "-O", "State:|,Reason:|"],
                    capture_output=True, text=True, env=self.env,
                )  # fmt: skip
                if res.stdout.strip().startswith("PENDING|BeginTime"):
                    subprocess.run(
                        ["scontrol", "update", f"JobId={job}", "StartTime=now"],
                        capture_output=True, env=self.env,
                    )  # fmt: skip


@dataclass
class LongJobs:
    work: Path
    stop_job: str
    timeout_job: str
    two_node_job: str
    watchdogs: dict[str, subprocess.Popen]
    releaser: BeginTimeReleaser

    def stop(self) -> None:
        self.releaser.done.set()
        for proc in self.watchdogs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def _run(argv: list[str], work: Path, env: dict[str, str]) -> str:
    res = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"{argv[:5]} exit {res.returncode}: {res.stdout}{res.stderr}")
    return res.stdout


def start(work: Path, env: dict[str, str]) -> LongJobs:
    """Submit both jobs from ``work`` (with SLURM_CONF in ``env``) and attach a watchdog each."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(TRAINER, work / "trainer.py")
    runs = [PY, "-m", "toolkit.runs"]
    _run(
        [
            *runs, "run", "create", "--name", "stopper", "--backend", "slurm", "--time", "1",
            "--signal-lead-s", "50", "--auto-start",
            "--command", f"{PY} trainer.py --steps 40 --step-s 1 --ckpt stop.json",
        ],
        work, env,
    )  # fmt: skip
    stop_job = json.loads(_run([*runs, "run", "show", "stopper", "--format", "json"], work, env))[
        "job_id"
    ]
    launch = _run(
        [
            PY, "-m", "toolkit.hardware", "launch", "--env", "slurm", "--gpus-per-node", "0",
            "--python", PY, "--script", "trainer.py", "--time", "1", "--signal-lead-s", "5",
            "--job-name", "limit", "--output", str(work / "limit-%j.out"),
            "--master-port", str(_free_port()), "--format", "json",
            "--", "--steps", str(LIMIT_STEPS), "--step-s", "1", "--ckpt", "limit.json",
            "--ignore-stop",
        ],
        work, env,
    )  # fmt: skip
    (work / "limit.sbatch").write_text(json.loads(launch)["script"])
    timeout_job = _run(["sbatch", "--parsable", str(work / "limit.sbatch")], work, env).strip()
    shutil.copy(DDP_CHECK, work / "ddp_check.py")
    two_node = _run(
        [
            PY, "-m", "toolkit.hardware", "launch", "--env", "slurm", "--nodes", "2",
            "--gpus-per-node", "0", "--python", PY, "--script", "ddp_check.py", "--time", "5",
            "--job-name", "two-node", "--output", str(work / "two-node-%j.out"),
            "--master-port", str(_free_port()), "--format", "json",
        ],
        work, env,
    )  # fmt: skip
    (work / "two-node.sbatch").write_text(json.loads(two_node)["script"])
    two_node_job = _run(["sbatch", "--parsable", str(work / "two-node.sbatch")], work, env).strip()
    watchdogs = {}
    for name, job, log, ckpt in (
        ("stop", stop_job, work / ".labcoat" / "runs" / "stopper" / f"slurm-{stop_job}.out",
         "stop.json"),
        ("limit", timeout_job, work / f"limit-{timeout_job}.out", "limit.json"),
    ):  # fmt: skip
        watchdogs[name] = subprocess.Popen(
            [
                PY, "-m", "toolkit.watchdog", "run", "--run-dir", str(work / f"wd-{name}"),
                "--slurm-job", job, "--slurm-log", str(log), "--checkpoints", str(work / ckpt),
                "--poll", "1", "--backoff", "0.1",
            ],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    releaser = BeginTimeReleaser(env)
    releaser.jobs.update({stop_job, timeout_job})
    releaser.start()
    return LongJobs(work, stop_job, timeout_job, two_node_job, watchdogs, releaser)
