"""Queries of a Slurm job's state: the one parser of ``squeue``, ``sacct`` and ``scontrol``.

Used by the watchdog (supervising a job) and the runs registry (tracking submitted runs). The
state comes from ``squeue`` while the controller holds the job; the exit code of an ended job
from ``sacct`` where accounting storage exists, else from ``scontrol show job`` (small clusters
often run without accounting: sacct then prints "Slurm accounting storage is disabled"). Formats
(Slurm 21-24; checked against a real 22.05 cluster):

  ``squeue -j ID -h -t all -O State:|,RestartCnt:|`` -> ``RUNNING|0|`` (``-t all``: ended jobs
                                                  too, while the controller keeps them for
                                                  MinJobAge); exit 1 with "Invalid job id
                                                  specified" once it has left
  ``sacct -j ID -n -P -o JobID,State,ExitCode``   -> ``ID|COMPLETED|0:0`` then ``ID.batch|...``
  ``scontrol show job -o ID``                     -> one line of ``Key=Value`` words:
                                                  ``JobState=FAILED ... Restarts=0 ...
                                                  ExitCode=3:0 ...``; exit 1 with "Invalid job
                                                  id specified" once it has left
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

SACCT_FIELDS = "JobID,State,ExitCode"
SQUEUE_FORMAT = "State:|,RestartCnt:|"

ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SUSPENDED",
        "STOPPED",
        "RUNNING",
        "COMPLETING",
        "SIGNALING",
        "STAGE_OUT",
    }
)


@dataclass(frozen=True)
class JobState:
    """A job as Slurm reports it. ``state``: Slurm's word (``RUNNING``, ``COMPLETED``...);
    ``exit_code``: Popen style (``-S`` for signal S), None while running or unknown;
    ``restarts``: times the job was requeued; ``source``: the command that answered."""

    state: str
    exit_code: int | None = None
    restarts: int | None = None
    source: str = "squeue"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def _cmd(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _state_word(text: str) -> str:
    """``CANCELLED by 1000`` -> ``CANCELLED``; a trailing ``+`` (truncation) is dropped."""
    return (text.split() or ["UNKNOWN"])[0].rstrip("+")


def exit_code(text: str) -> int | None:
    """Slurm ``ExitCode`` ``X:S`` -> ``-S`` when a signal S ended it, else X (None if garbled)."""
    code, _, sig = text.strip().partition(":")
    try:
        return -int(sig) if sig and int(sig) else int(code)
    except ValueError:
        return None


def parse_squeue(text: str) -> JobState | None:
    """The first row of ``squeue -h -O State:|,RestartCnt:|``; a bare ``%T`` row works too."""
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if not parts[0]:
            continue
        restarts = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        return JobState(_state_word(parts[0]), None, restarts, "squeue")
    return None


def squeue_job(job: str) -> JobState | None:
    """The job while the controller knows it (ended ones too), else None."""
    try:
        res = _cmd(["squeue", "-j", job, "-h", "-t", "all", "-O", SQUEUE_FORMAT])
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_squeue(res.stdout) if res.returncode == 0 else None


def squeue_state(job: str) -> str | None:
    """The job's state word while the controller knows it, else None."""
    found = squeue_job(job)
    return found.state if found else None


def parse_sacct(text: str, job: str) -> tuple[str, int | None] | None:
    """``(STATE, returncode)`` of the job's own row in ``sacct -n -P -o JobID,State,ExitCode``."""
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or parts[0] != job:
            continue
        return _state_word(parts[1]), exit_code(parts[2])
    return None


def sacct_state(job: str) -> tuple[str, int | None] | None | bool:
    """The job's sacct row; None when sacct knows no such job; False when sacct could not answer
    (not installed, accounting storage disabled or down, timed out)."""
    try:
        res = _cmd(["sacct", "-j", job, "-n", "-P", "-o", SACCT_FIELDS])
    except (OSError, subprocess.TimeoutExpired):
        return False
    if res.returncode != 0:
        return False
    return parse_sacct(res.stdout, job)


def parse_scontrol(text: str) -> dict[str, str]:
    """``Key=Value`` words of ``scontrol show job -o`` (values without spaces; the free-text
    fields such as ``Command=`` may be cut at a space, which the callers do not read)."""
    fields: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def scontrol_job(job: str) -> JobState | None:
    """The job as ``scontrol show job`` reports it, or None once the controller forgot it."""
    try:
        res = _cmd(["scontrol", "show", "job", "-o", job])
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = parse_scontrol(res.stdout)
    if res.returncode != 0 or "JobState" not in fields:
        return None
    restarts = fields.get("Restarts", "")
    return JobState(
        _state_word(fields["JobState"]),
        exit_code(fields.get("ExitCode", "")),
        int(restarts) if restarts.isdigit() else None,
        "scontrol",
    )


def job_state(job: str) -> JobState | None:
    """State, exit code and restarts of ``job``: squeue while it is active; for an ended job
    the exit code from sacct where accounting storage exists, else from ``scontrol show job``.
    None when no command knows the job (gone from the controller, no accounting)."""
    queued = squeue_job(job)
    if queued is not None and queued.active:
        return queued
    restarts = queued.restarts if queued else None
    row = sacct_state(job)
    if isinstance(row, tuple) and row[0] not in ACTIVE_STATES:
        return JobState(row[0], row[1], restarts, "sacct")
    shown = scontrol_job(job)
    if shown is not None:
        return shown
    if queued is not None:  # ended, but neither sacct nor scontrol gave an exit code
        return queued
    return None
