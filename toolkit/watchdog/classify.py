"""Classify one exit of the supervised run from its exit status and the tail of its log.

Order of evidence: a hang the watchdog itself detected; then the catalogue (root cause over
symptom, see :mod:`toolkit.watchdog.catalogue`); then the exit signal (SIGKILL / 137 is the
kernel OOM-killer or an operator, SIGTERM / 143 is preemption); then exit 0 is success; anything
else is ``unknown`` and is not restarted (a restart cannot be shown to help).
The same failure at the same step twice becomes ``code`` (it will recur).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

from toolkit.watchdog.catalogue import (
    CODE,
    ENVIRONMENT,
    RESTARTABLE,
    SUCCESS,
    UNKNOWN,
    patterns,
)

STEP_RE = re.compile(r"\bstep[=:\s]\s*(\d+)", re.IGNORECASE)


@dataclass
class Diagnosis:
    """What ended one attempt and what the watchdog does about it."""

    cls: str
    subclass: str
    meaning: str
    restart: bool
    evidence: list[str] = field(default_factory=list)
    action: str = ""
    step: int | None = None
    signature: str = ""


def exit_signal(returncode: int | None) -> int | None:
    """Signal number that ended the process: ``-N`` from Popen, or 128+N from a shell."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode < 160:
        return returncode - 128
    return None


def last_step(text: str) -> int | None:
    """The last ``step=N`` in ``text``, or None."""
    found = STEP_RE.findall(text)
    return int(found[-1]) if found else None


def _normalize(line: str) -> str:
    """A failure line without numbers that change between attempts (pids, times, addresses)."""
    return re.sub(r"0x[0-9a-f]+|\d+", "#", line.strip())[:200]


def classify(
    returncode: int | None, log_tail: str, *, hung: bool = False, hang_reason: str = ""
) -> Diagnosis:
    """Diagnose one exit.

    ``returncode`` is Popen's (negative = killed by that signal) or None when unknown (a
    re-attached process); ``log_tail`` the last few tens of KiB of its output.
    """
    step = last_step(log_tail)
    if hung:
        return Diagnosis(
            ENVIRONMENT,
            "hang",
            "no new log output or checkpoint within the hang timeout",
            True,
            [hang_reason] if hang_reason else [],
            "restarted from the latest checkpoint",
            step,
            "hang",
        )
    best = None
    killed = exit_signal(returncode) in (signal.SIGKILL, signal.SIGTERM)
    for pat in patterns():
        if killed and pat.subclass == "python-exception":
            continue  # an exception ends a run with exit 1, not a signal: that text is older
        matches = list(pat.compiled.finditer(log_tail))
        if matches:
            best = (pat, matches[-1])
            break
    if best is not None:
        pat, match = best
        line_start = log_tail.rfind("\n", 0, match.start()) + 1
        line_end = log_tail.find("\n", match.end())
        line = log_tail[line_start : line_end if line_end >= 0 else len(log_tail)].strip()
        evidence = [line[:500]]
        if returncode is not None:
            evidence.append(f"exit status {returncode}")
        return Diagnosis(
            pat.cls,
            pat.subclass,
            pat.meaning,
            pat.cls in RESTARTABLE,
            evidence,
            pat.action,
            step,
            f"{pat.cls}/{pat.subclass}:{_normalize(line)}",
        )
    sig = exit_signal(returncode)
    if sig == signal.SIGKILL:
        return Diagnosis(
            ENVIRONMENT,
            "sigkill",
            "killed by SIGKILL (kernel OOM-killer, the scheduler or an operator)",
            True,
            [f"exit status {returncode} (SIGKILL)"],
            "restarted from the latest checkpoint",
            step,
            "environment/sigkill",
        )
    if sig == signal.SIGTERM:
        return Diagnosis(
            ENVIRONMENT,
            "sigterm",
            "terminated by SIGTERM (preemption or scheduler)",
            True,
            [f"exit status {returncode} (SIGTERM)"],
            "restarted from the latest checkpoint",
            step,
            "environment/sigterm",
        )
    if returncode == 0:
        return Diagnosis(
            SUCCESS,
            "finished",
            "the run exited with status 0",
            False,
            ["exit status 0"],
            "",
            step,
            "success",
        )
    traceback_line = _last_traceback_line(log_tail)
    evidence = [f"exit status {returncode}"] + ([traceback_line] if traceback_line else [])
    if traceback_line:
        return Diagnosis(
            CODE,
            "traceback",
            "the run raised an exception the catalogue does not list",
            False,
            evidence,
            "read the traceback in the log",
            step,
            f"code/traceback:{_normalize(traceback_line)}",
        )
    return Diagnosis(
        UNKNOWN,
        "unexplained-exit",
        "non-zero exit with no recognised error text; not restarted because a restart cannot be shown to help",
        False,
        evidence,
        "read the log tail",
        step,
        f"unknown:{returncode}",
    )


def _last_traceback_line(text: str) -> str:
    """The exception line after the last ``Traceback (most recent call last):``, or ''."""
    idx = text.rfind("Traceback (most recent call last):")
    if idx < 0:
        return ""
    for line in text[idx:].splitlines()[1:]:
        if line and not line.startswith((" ", "\t")):
            return line.strip()[:500]
    return ""


def repeated(diag: Diagnosis, previous: Diagnosis | None) -> Diagnosis:
    """Turn a restartable failure into ``code/repeated`` when it matches the previous one.

    Same signature (class, subclass, normalised error line) at the same known step twice means
    the fault is deterministic and a third attempt would fail the same way.
    """
    if (
        previous is None
        or not diag.restart
        or diag.step is None
        or diag.step != previous.step
        or diag.signature != previous.signature
    ):
        return diag
    return Diagnosis(
        CODE,
        "repeated",
        f"the same failure ({diag.cls}/{diag.subclass}) at the same step "
        f"{diag.step} twice: it is deterministic and will recur",
        False,
        diag.evidence + [f"previous attempt failed identically at step {previous.step}"],
        "treat as a code or data bug at this step",
        diag.step,
        diag.signature,
    )


def diagnosis_from_dict(data: dict | None) -> Diagnosis | None:
    """Rebuild a :class:`Diagnosis` from its JSON form (state file)."""
    if not data:
        return None
    return Diagnosis(**{k: data.get(k) for k in Diagnosis.__dataclass_fields__ if k in data})
