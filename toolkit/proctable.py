"""The process table (Linux ``/proc``): who is alive, when it started, which group it is in.

A pid alone does not name a process: pids are reused, and a run's work may go on in its
process group after the recorded leader died (SIGKILL of a wrapper leaves its children
running). Everything that tracks a process here records pid, start time (clock ticks since
boot) and process group, and asks this module. Elsewhere than Linux the start times are
``None`` and only liveness is checked.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` fields after the command name (state is [0], pgid [2], start [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None (gone, or not Linux)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def alive(pid: int, start: int | str | None = None) -> bool:
    """``pid`` exists, is not a zombie, and (when ``start`` is given) started at ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields is None:
        return not Path("/proc").is_dir()  # no /proc: trust kill(0)
    if fields[0] in ("Z", "X"):
        return False
    return start is None or int(fields[19]) == int(start)


def group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, start ticks) of every live, non-zombie process in group ``pgid``."""
    out = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return out
    for entry in entries:
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            out.append((int(entry.name), int(fields[19])))
    return out


def group_alive(pgid: int, leader_start: int | str | None = None) -> list[int]:
    """Pids still running in the group a leader with ``pgid`` started at ``leader_start``.

    With the leader gone, members count only if they started at or after it (the group is
    then the old one, not a new group that reused the number). Empty when the group is gone.
    """
    members = group_members(pgid)
    if leader_start is None:
        return [pid for pid, _ in members]
    start = int(leader_start)
    if any(pid == pgid and st != start for pid, st in members):
        return []  # a new leader reused the number: not our group
    return [pid for pid, st in members if st >= start]


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to group ``pgid``; False when it is gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
