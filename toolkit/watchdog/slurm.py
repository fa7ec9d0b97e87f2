"""Supervise a submitted Slurm job by id: poll ``squeue``, read the end state and exit code
(``sacct`` where accounting exists, else ``scontrol show job``: :func:`toolkit.hardware.slurm.
job_state`), classify, and restart with ``scontrol requeue`` (same job id; the job script resumes
from its latest checkpoint — the watchdog records which checkpoint that is).

Commands besides those of :mod:`toolkit.hardware.slurm`:
  ``scontrol requeue ID``                           -> silent, exit 0

A requeued job is held by Slurm (Reason=BeginTime) for about two minutes before it may start
again; the watchdog waits for it like for any pending job.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.hardware.slurm import ACTIVE_STATES as ACTIVE
from toolkit.hardware.slurm import job_state, parse_sacct, squeue_state  # noqa: F401
from toolkit.watchdog import checkpoints
from toolkit.watchdog.catalogue import ENVIRONMENT, SUCCESS, UNKNOWN
from toolkit.watchdog.classify import Diagnosis, classify, diagnosis_from_dict, last_step, repeated
from toolkit.watchdog.hang import HangDetector
from toolkit.watchdog.policy import RestartPolicy, decide
from toolkit.watchdog.record import RunDir, append_event, read_state, write_context, write_state

TRANSIENT_END = {"PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "TIMEOUT", "OUT_OF_MEMORY", "DEADLINE"}


@dataclass
class SlurmOptions:
    """Slurm-mode options; times in seconds."""

    run_dir: Path
    job_id: str
    log: Path | None = None
    checkpoint_glob: str | None = None
    checkpoint_dir: Path | None = None
    required_files: tuple[str, ...] = ()
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    poll_s: float = 30.0
    hang_timeout_s: float | None = None
    startup_grace_s: float = 600.0
    hang_min_s: float = 60.0
    hang_factor: float = 10.0


def _cmd(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def end_state(job: str) -> tuple[str, int | None] | None:
    """``(STATE, exit code)`` of an ended job, or None while it is active or nobody knows it."""
    found = job_state(job)
    return None if found is None or found.active else (found.state, found.exit_code)


def requeue(job: str) -> tuple[bool, str]:
    """``scontrol requeue ID``; (ok, stderr)."""
    try:
        res = _cmd(["scontrol", "requeue", job])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return res.returncode == 0, res.stderr.strip()


def classify_slurm(state: str, rc: int | None, tail: str) -> Diagnosis:
    """Diagnosis from the sacct state, exit code and the job's log tail."""
    if state == "COMPLETED":
        return Diagnosis(SUCCESS, "finished", "the job completed", False, [f"sacct State={state}"])
    if state == "CANCELLED":
        return Diagnosis(
            UNKNOWN,
            "cancelled",
            "the job was cancelled (scancel); not requeued",
            False,
            [f"sacct State={state}"],
            "resubmit or requeue by hand if that was not intended",
        )
    diag = classify(rc, tail)
    diag.evidence.append(f"sacct State={state} ExitCode rc={rc}")
    # the log's "DUE TO TIME LIMIT / PREEMPTION" line only guesses what Slurm's state states
    generic = diag.subclass in ("sigkill", "sigterm", "unexplained-exit", "finished", "preemption")
    if state in TRANSIENT_END and generic:
        diag = Diagnosis(
            ENVIRONMENT,
            f"slurm-{state.lower()}",
            f"Slurm ended the job: {state}",
            True,
            diag.evidence,
            "requeued",
            diag.step,
            f"slurm:{state}",
        )
    return diag


def _log_tail(log: Path | None, start: int, nbytes: int = 65536) -> str:
    """The job log's last ``nbytes`` bytes written at or after byte ``start`` ('' when none)."""
    if log is None or not log.exists():
        return ""
    size = log.stat().st_size
    if size < start:  # Slurm truncated the file on requeue
        start = 0
    with open(log, "rb") as fh:
        fh.seek(max(start, size - nbytes))
        return fh.read().decode("utf-8", errors="replace")


def supervise(o: SlurmOptions) -> int:
    """Watch job ``o.job_id`` until it completes or must stop; 0 finished, 1 stopped."""
    rd = RunDir(Path(o.run_dir))
    rd.ensure()
    state = read_state(rd) or {
        "slurm_job": o.job_id,
        "status": "attached",
        "attempt": 1,
        "restart_times": [],
        "last_diagnosis": None,
        "checkpoint": None,
    }
    state["slurm_job"] = o.job_id
    append_event(rd, "watchdog_start", mode="slurm", job=o.job_id)
    hang = HangDetector(o.hang_timeout_s, o.startup_grace_s, o.hang_factor, o.hang_min_s)
    hang.start(time.monotonic())
    log_size = 0
    attempt_offset = 0  # bytes of the job log written before the current attempt (requeue)

    def save() -> None:
        choice = checkpoints.latest_complete(o.checkpoint_glob, o.checkpoint_dir, o.required_files)
        state["latest_checkpoint"] = str(choice.path) if choice.path else None
        write_state(rd, state)
        write_context(rd, state)

    save()
    while True:
        now = time.monotonic()
        sq = squeue_state(o.job_id)
        hung_reason = None
        if o.log is not None and o.log.exists():
            size = o.log.stat().st_size
            if size != log_size:
                new_bytes = _log_tail(o.log, max(attempt_offset, log_size), 65536)
                log_size = size
                hang.output(now)
                for line in new_bytes.splitlines():
                    hang.line(line, now)
                step = last_step(_log_tail(o.log, attempt_offset, 4096))
                if step is not None:
                    hang.step(step, now)
        if sq == "RUNNING":
            hung_reason = hang.hung(now)
        elif sq in ACTIVE:
            hang.start(now)
        if sq in ACTIVE and not hung_reason:
            time.sleep(o.poll_s)
            continue
        if hung_reason:
            append_event(rd, "hang_detected", reason=hung_reason, job=o.job_id)
            diag = classify(None, "", hung=True, hang_reason=hung_reason)
        else:
            end = end_state(o.job_id)
            if end is None or end[0] in ACTIVE:
                time.sleep(o.poll_s)
                continue
            tail = _log_tail(o.log, attempt_offset)
            diag = classify_slurm(end[0], end[1], tail)
        diag = repeated(diag, diagnosis_from_dict(state.get("last_diagnosis")))
        state["last_diagnosis"] = asdict(diag)
        append_event(
            rd,
            "exit",
            job=o.job_id,
            cls=diag.cls,
            subclass=diag.subclass,
            step=diag.step,
            restart=diag.restart,
            evidence=diag.evidence,
            meaning=diag.meaning,
        )
        if diag.cls == SUCCESS or not diag.restart:
            state["status"] = "finished" if diag.cls == SUCCESS else "stopped"
            append_event(rd, "watchdog_stop", status=state["status"])
            save()
            return 0 if diag.cls == SUCCESS else 1
        decision = decide(o.policy, state.get("restart_times", []), time.time())
        if not decision.restart:
            state["status"] = "stopped"
            append_event(rd, "watchdog_stop", status="stopped", reason=decision.reason)
            save()
            return 1
        time.sleep(decision.delay_s)
        ok, err = requeue(o.job_id)
        state.setdefault("restart_times", []).append(time.time())
        state["attempt"] = int(state.get("attempt", 1)) + 1
        append_event(
            rd,
            "restart",
            job=o.job_id,
            via="scontrol requeue",
            ok=ok,
            error=err,
            backoff_s=decision.delay_s,
        )
        if not ok:
            state["status"] = "stopped"
            append_event(
                rd, "watchdog_stop", status="stopped", reason=f"scontrol requeue failed: {err}"
            )
            save()
            return 1
        state["status"] = "attached"
        save()
        attempt_offset = o.log.stat().st_size if o.log is not None and o.log.exists() else 0
        hang.start(time.monotonic())
        time.sleep(o.poll_s)
