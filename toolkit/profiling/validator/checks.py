"""Check results and the verdict rule shared by every runtime validation report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "fail", "warn", "skip"]


@dataclass
class Check:
    """One line of the verdict: ``status`` of ``name``, with the numbers in ``message``.

    ``fail`` makes the verdict FAIL; ``warn`` is shown but does not; ``skip`` says a check
    could not run and why (never a made-up number).
    """

    name: str
    status: Status
    message: str


def verdict(checks: list[Check]) -> str:
    return "FAIL" if any(c.status == "fail" for c in checks) else "PASS"
