"""Restart policy: exponential back-off and a cap on restarts within a sliding time window."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartPolicy:
    """``max_restarts`` within ``window_s`` seconds; back-off ``base_s * 2**(n-1)`` up to ``max_backoff_s``."""

    max_restarts: int = 5
    window_s: float = 3600.0
    base_s: float = 1.0
    max_backoff_s: float = 300.0


@dataclass
class Decision:
    """Restart after ``delay_s`` seconds, or stop (``restart`` False) with ``reason``."""

    restart: bool
    delay_s: float
    reason: str


def decide(policy: RestartPolicy, restart_times: list[float], now: float) -> Decision:
    """Whether to restart once more, given the wall-clock times (s) of earlier restarts."""
    recent = [t for t in restart_times if now - t <= policy.window_s]
    if len(recent) >= policy.max_restarts:
        return Decision(
            False,
            0.0,
            f"{len(recent)} restarts within {policy.window_s:g} s "
            f"(limit {policy.max_restarts}); stopping",
        )
    delay = min(policy.max_backoff_s, policy.base_s * 2 ** len(recent))
    return Decision(
        True,
        delay,
        f"restart {len(recent) + 1} of {policy.max_restarts} in the window; back-off {delay:g} s",
    )
