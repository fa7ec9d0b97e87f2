"""Hang detection: no training *progress* for longer than a timeout. Output is not progress.

Progress is a new step counter in the log (``step=N``, ``iter N``, ``epoch N``, a tqdm
``n/total [``), a new metric value (``loss=``, ``val_loss``, ``accuracy``, ...) or a new or
changed checkpoint. A log line that repeats what was already seen (a heartbeat printed by a
main thread while a worker thread is deadlocked, the same ``step=5`` over and over, a progress
bar whose counter does not move) is output, not progress, and does not reset the clock.

The timeout is either fixed (``timeout_s``) or derived from the observed step time:
``max(min_timeout_s, factor * median step interval)``. Before the second step the start-up
grace period applies (imports, data loading, compilation).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

COUNTER_RE = re.compile(
    r"\b(global_step|step|iter(?:ation)?|it|batch|epoch)s?\b\s*[=:#]?\s*(\d+)", re.IGNORECASE
)
TQDM_RE = re.compile(r"(\d+)/(\d+)\s*\[")
METRIC_RE = re.compile(
    r"\b(loss|\w+_loss|acc|accuracy|perplexity|ppl|tokens|samples)\b[\"']?\s*[=:]\s*[\"']?"
    r"([-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))",
    re.IGNORECASE,
)
RECENT = 8  # a line is progress when its signature is not among the last RECENT ones


def progress_signature(line: str) -> tuple[tuple[str, str], ...] | None:
    """The counters and metric values in ``line`` (``None`` when it has none: plain output)."""
    items = [(m.group(1).lower(), m.group(2)) for m in COUNTER_RE.finditer(line)]
    items += [("tqdm", m.group(1)) for m in TQDM_RE.finditer(line)]
    items += [(m.group(1).lower(), m.group(2).lower()) for m in METRIC_RE.finditer(line)]
    return tuple(items) or None


@dataclass
class HangDetector:
    """Feed it progress and output; ask it whether the run is hung. All times are seconds."""

    timeout_s: float | None = None
    startup_grace_s: float = 600.0
    factor: float = 10.0
    min_timeout_s: float = 60.0
    started_at: float = 0.0
    last_activity: float = 0.0  # last progress (the hang clock)
    last_output: float = 0.0  # last log bytes (reported, never resets the clock)
    step_times: list[float] = field(default_factory=list)
    last_step: int | None = None
    recent: list[tuple] = field(default_factory=list)

    def start(self, now: float) -> None:
        """A new attempt started at ``now``."""
        self.started_at = self.last_activity = self.last_output = now
        self.step_times = []
        self.last_step = None
        self.recent = []

    def activity(self, now: float) -> None:
        """Progress at ``now`` (a new or changed checkpoint, a new metric)."""
        self.last_activity = now

    def output(self, now: float) -> None:
        """New log bytes at ``now``: recorded for the report, not progress."""
        self.last_output = now

    def line(self, line: str, now: float) -> None:
        """One complete log line: progress when it carries counters/metrics not seen recently."""
        sig = progress_signature(line)
        if sig is None or sig in self.recent:
            return
        self.recent = [*self.recent[-(RECENT - 1) :], sig]
        self.activity(now)

    def step(self, step: int, now: float) -> None:
        """A training step number was logged at ``now``; a new number is progress."""
        if step != self.last_step:
            self.step_times.append(now)
            self.step_times = self.step_times[-50:]
            self.last_step = step
            self.last_activity = now

    def current_timeout(self) -> float:
        """The timeout now in force (s): the grace period until two steps were seen."""
        if len(self.step_times) < 2:
            return self.startup_grace_s
        if self.timeout_s is not None:
            return self.timeout_s
        gaps = [b - a for a, b in zip(self.step_times, self.step_times[1:], strict=False)]
        return max(self.min_timeout_s, self.factor * statistics.median(gaps))

    def hung(self, now: float) -> str | None:
        """A reason string when hung at ``now``, else None."""
        timeout = self.current_timeout()
        idle = now - self.last_activity
        if idle > timeout:
            quiet = now - self.last_output
            out = (
                f"; the log kept growing until {quiet:.1f} s ago (output without progress)"
                if quiet < idle - 1e-6
                else ""
            )
            return (
                f"no training progress (new step, metric or checkpoint) for {idle:.1f} s "
                f"(timeout {timeout:.1f} s; last step {self.last_step}){out}"
            )
        return None
