"""Queries of a Slurm job's state: the one parser of ``squeue`` and ``sacct`` output.

Used by the watchdog (supervising a job) and the runs registry (tracking submitted runs).

  ``squeue -j ID -h -o %T``                        -> ``PENDING`` / ``RUNNING`` ...; exit 1 with
                                                      "Invalid job id specified" once it has left
  ``sacct -j ID -n -P -o JobID,State,ExitCode``    -> ``ID|COMPLETED|0:0`` then ``ID.batch|...``
"""

from __future__ import annotations

import subprocess

SACCT_FIELDS = "JobID,State,ExitCode"


def _cmd(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def squeue_state(job: str) -> str | None:
    """The job's state while the controller knows it, else None."""
    try:
        res = _cmd(["squeue", "-j", job, "-h", "-o", "%T"])
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    return lines[0] if res.returncode == 0 and lines else None


def parse_sacct(text: str, job: str) -> tuple[str, int | None] | None:
    """``(STATE, returncode)`` of the job's own row in ``sacct -n -P -o JobID,State,ExitCode``.

    ``ExitCode`` ``X:S``: a signal S becomes ``-S`` (Popen style), else the exit code X. A state
    like ``CANCELLED by 1000`` reads as ``CANCELLED``; a trailing ``+`` is dropped.
    """
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or parts[0] != job:
            continue
        state = (parts[1].split() or ["UNKNOWN"])[0].rstrip("+")
        code, _, sig = parts[2].partition(":")
        try:
            rc: int | None = -int(sig) if sig and int(sig) else int(code)
        except ValueError:
            rc = None
        return state, rc
    return None


def sacct_state(job: str) -> tuple[str, int | None] | None | bool:
    """The job's sacct row; None when sacct knows no such job; False when sacct could not answer
    (not installed, accounting down, timed out)."""
    try:
        res = _cmd(["sacct", "-j", job, "-n", "-P", "-o", SACCT_FIELDS])
    except (OSError, subprocess.TimeoutExpired):
        return False
    if res.returncode != 0:
        return False
    return parse_sacct(res.stdout, job)
