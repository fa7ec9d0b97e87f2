"""Child processes in their own process group: start, poll, signal, re-attach."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SHIM = Path(__file__).with_name("_shim.py")


def status_path(log_path: Path) -> Path:
    """Where the shim writes the exit status of the attempt logged to ``log_path``."""
    return log_path.with_suffix(".exit.json")


def recorded_returncode(log_path: Path) -> int | None:
    """The exit status the shim recorded for this attempt, or None."""
    try:
        return int(json.loads(status_path(log_path).read_text())["returncode"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def start(
    argv: list[str], log_path: Path, cwd: Path | None, env: dict[str, str]
) -> subprocess.Popen:
    """Start ``argv`` in a new session (its own process group), stdout+stderr appended to ``log_path``.

    ``argv`` runs under :mod:`toolkit.watchdog._shim`, which records its exit status next to the
    log. The log is opened in append mode, so nothing the file held before is lost; the child keeps
    its own descriptor, so it survives a watchdog restart and stays observable through the file.
    """
    with open(log_path, "ab") as log:
        shimmed = [sys.executable, str(SHIM), str(status_path(log_path).resolve()), *argv]
        return subprocess.Popen(
            shimmed,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the process group; False when the group is gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Attached:
    """A process this watchdog did not start (re-attach): liveness only, exit status unknown."""

    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        return None if alive(self.pid) else -1

    def known_returncode(self) -> int | None:
        return None


def stop_group(
    proc: subprocess.Popen | Attached, pgid: int, grace_s: float, sig: int = signal.SIGTERM
) -> None:
    """``sig`` to the group, up to ``grace_s`` seconds to exit, then SIGKILL to the group."""
    signal_group(pgid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    if proc.poll() is None:
        signal_group(pgid, signal.SIGKILL)
        if isinstance(proc, subprocess.Popen):
            proc.wait()
        else:
            while proc.poll() is None:
                time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)  # leftovers (DataLoader workers) of a dead leader
