"""Watching a running round: a heartbeat line and file, stall detection, the epoch limit.

While a round's command runs, :func:`watch` wakes every ``poll_s`` seconds (0.2 s), and every
``interval_s`` seconds writes ``heartbeat.json`` beside the command's log (command, pid,
elapsed and remaining seconds, log size in bytes, last log line) and one progress line to
stderr, so a supervisor sees the round is alive without reading the log. When the log has not
grown for ``stall_s`` seconds the command is reported stalled (the caller kills its group).

The epoch limit: the round's commands get ``LABCOAT_MAX_EPOCHS`` in their environment, and
:func:`epochs_seen` counts epochs in what they wrote; more than the limit fails the round.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

POLL_S = 0.2
EPOCH_RE = re.compile(r"\bepoch\b[\"']?\s*[=:]?\s*([0-9]+(?:\.[0-9]+)?)", re.I)


@dataclass
class Heartbeat:
    """How a running command is watched. ``interval_s``: seconds between heartbeats (0: none);
    ``stall_s``: seconds without new log output before the command counts as stalled."""

    interval_s: float = 30.0
    stall_s: float | None = None
    label: str = "command"
    stream: TextIO | None = None  # default sys.stderr


@dataclass
class WatchResult:
    code: int | None  # exit code; None when the command was stopped
    timed_out: bool = False
    stalled: bool = False


def _last_line(log: Path, size: int) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, size - 2048))
            tail = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return tail[-1][:200] if tail else ""


def beat(log: Path, hb: Heartbeat, pid: int, elapsed: float, left: float, size: int) -> None:
    """Write ``heartbeat.json`` next to ``log`` and one progress line to the stream."""
    last = _last_line(log, size)
    record = {
        "label": hb.label, "pid": pid, "elapsed_s": round(elapsed, 1),
        "budget_left_s": round(max(0.0, left), 1), "log": str(log), "log_bytes": size,
        "last_line": last, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    tmp = log.parent / ".heartbeat.json.tmp"
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, log.parent / "heartbeat.json")
    stream = hb.stream or sys.stderr
    stream.write(
        f"[labcoat heartbeat] {hb.label}: {elapsed:.0f} s elapsed, {max(0.0, left):.0f} s left,"
        f" log {size} B; last: {last!r}\n"
    )
    stream.flush()


def watch(proc: subprocess.Popen, log: Path, timeout_s: float, hb: Heartbeat | None) -> WatchResult:
    """Wait for ``proc`` up to ``timeout_s``, beating and checking for a stall on the way."""
    t0 = time.monotonic()
    last_size, last_growth, next_beat = -1, t0, t0 + (hb.interval_s if hb else math.inf)
    while True:
        now = time.monotonic()
        left = timeout_s - (now - t0)
        if left <= 0:
            return WatchResult(None, timed_out=True)
        try:
            return WatchResult(proc.wait(timeout=min(left, POLL_S)))
        except subprocess.TimeoutExpired:
            pass
        if hb is None:
            continue
        now = time.monotonic()
        try:
            size = log.stat().st_size
        except OSError:
            size = 0
        if size != last_size:
            last_size, last_growth = size, now
        if hb.stall_s is not None and now - last_growth >= hb.stall_s:
            return WatchResult(None, stalled=True)
        if hb.interval_s > 0 and now >= next_beat:
            beat(log, hb, proc.pid, now - t0, timeout_s - (now - t0), size)
            next_beat = now + hb.interval_s


def epochs_in_values(values: list[float]) -> int | None:
    """Epochs run, from every ``epoch`` value seen: ``ceil(max)`` for fractional epochs (HF
    writes 0.5, 1.0, ...), ``max + 1`` for a 0-based integer counter, else ``max``."""
    finite = [v for v in values if math.isfinite(v) and v >= 0]
    if not finite:
        return None
    top = max(finite)
    if any(v != int(v) for v in finite):
        return math.ceil(top)
    return int(top) + 1 if min(finite) == 0 else int(top)


def epochs_seen(text: str, pattern: str | re.Pattern[str] = EPOCH_RE) -> int | None:
    """Epochs run according to ``epoch N`` / ``epoch=N`` / ``"epoch": N`` in ``text``."""
    rx = re.compile(pattern, re.I) if isinstance(pattern, str) else pattern
    values = []
    for m in rx.finditer(text):
        try:
            values.append(float(m.group(1)))
        except (IndexError, ValueError):
            continue
    return epochs_in_values(values)


def limit_env(max_epochs: int | None) -> dict[str, str] | None:
    """The environment for a round's commands: ``LABCOAT_MAX_EPOCHS`` when a limit is set."""
    if max_epochs is None:
        return None
    return {**os.environ, "LABCOAT_MAX_EPOCHS": str(max_epochs)}


def epoch_violation(seen: int | None, max_epochs: int | None) -> str:
    """The failure reason when ``seen`` epochs break the limit, else ``""``."""
    if max_epochs is None or seen is None or seen <= max_epochs:
        return ""
    return f"epoch limit: the round ran {seen} epochs, the protocol allows {max_epochs}"
