"""Hang detection: no new log output and no new checkpoint for longer than a timeout.

The timeout is either fixed (``timeout_s``) or derived from the observed step time:
``max(min_timeout_s, factor * median step interval)``. Before the first step the start-up
grace period applies (imports, data loading, compilation).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class HangDetector:
    """Feed it activity; ask it whether the process is hung. All times are seconds."""

    timeout_s: float | None = None
    startup_grace_s: float = 600.0
    factor: float = 10.0
    min_timeout_s: float = 60.0
    started_at: float = 0.0
    last_activity: float = 0.0
    step_times: list[float] = field(default_factory=list)
    last_step: int | None = None

    def start(self, now: float) -> None:
        """A new attempt started at ``now``."""
        self.started_at = self.last_activity = now
        self.step_times = []
        self.last_step = None

    def activity(self, now: float) -> None:
        """New log bytes or a new/changed checkpoint at ``now``."""
        self.last_activity = now

    def step(self, step: int, now: float) -> None:
        """A new training step was logged at ``now``."""
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
            return (
                f"no new log output or checkpoint for {idle:.1f} s (timeout {timeout:.1f} s; "
                f"last step {self.last_step})"
            )
        return None
