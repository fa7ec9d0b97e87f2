"""Classify one exit of the supervised run from its exit status and the tail of its log.

Order of evidence: a hang the watchdog itself detected; then the catalogue (root cause over
symptom, see :mod:`toolkit.watchdog.catalogue`), where a full disk measured by the watchdog
(free space, whatever the message said) outranks everything below the hardware and CUDA-OOM
entries; then the exit signal (SIGKILL / 137 is the kernel OOM-killer or an operator, SIGTERM /
143 is preemption, SIGSEGV / SIGBUS a native crash: restarted once, then ``code``); a process
group that ended while no watchdog was attached (exit status lost) is restarted from its
checkpoint; then exit 0 is success, unless the expected final step or checkpoint was not
reached (``exited-early``); anything else is ``unknown`` and is not restarted (a restart cannot
be shown to help). The same failure at the same step twice becomes ``code`` (it will recur).
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


NATIVE_CRASHES = {signal.SIGSEGV: "sigsegv", signal.SIGBUS: "sigbus"}
DISK_FULL_RANK = 21  # the catalogue's disk-full entry: only hardware and CUDA OOM outrank it


def classify(
    returncode: int | None,
    log_tail: str,
    *,
    hung: bool = False,
    hang_reason: str = "",
    low_disk: str = "",
    unwatched: bool = False,
) -> Diagnosis:
    """Diagnose one exit.

    ``returncode`` is Popen's (negative = killed by that signal) or None when unknown (a
    re-attached process); ``log_tail`` the last few tens of KiB of its output; ``low_disk``
    the watchdog's own free-space finding ('' when there is space); ``unwatched``: the process
    ended while no watchdog was attached.
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
    if low_disk and returncode != 0 and (best is None or best[0].rank > DISK_FULL_RANK):
        disk = next(p for p in patterns() if p.subclass == "disk-full")
        evidence = [low_disk] + ([best[1].group(0)[:300]] if best else [])
        if returncode is not None:
            evidence.append(f"exit status {returncode}")
        return Diagnosis(
            disk.cls, disk.subclass, disk.meaning, False, evidence, disk.action, step,
            f"{disk.cls}/{disk.subclass}",
        )  # fmt: skip
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
    if sig in NATIVE_CRASHES:
        name = signal.Signals(sig).name
        return Diagnosis(
            ENVIRONMENT,
            NATIVE_CRASHES[sig],
            f"native crash ({name}): a segmentation fault or bus error in C/CUDA code, a bad "
            "shared-memory or mmap'd file, or faulty memory; restarted once, a second one in the "
            "same run is treated as a code bug",
            True,
            [f"exit status {returncode} ({name})"],
            "restarted once from the latest checkpoint",
            step,
            f"environment/{NATIVE_CRASHES[sig]}",
        )
    if returncode is None and unwatched:
        return Diagnosis(
            ENVIRONMENT,
            "died-unwatched",
            "the run's process group ended while no watchdog was attached (its exit status was "
            "lost with it: killed with the whole group, a node or container restart)",
            True,
            [
                "exit status unknown: no process of the run's group is left and no status was recorded"
            ],
            "restarted from the latest checkpoint",
            step,
            "environment/died-unwatched",
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


def native_crash_policy(diag: Diagnosis, earlier: int) -> Diagnosis:
    """A SIGSEGV/SIGBUS is restarted once per run; with ``earlier`` >= 1 it is ``code``."""
    if diag.subclass not in NATIVE_CRASHES.values() or earlier < 1:
        return diag
    return Diagnosis(
        CODE,
        "native-crash-repeated",
        f"a second native crash ({diag.subclass}) in the same run: treated as a code bug "
        "(a C/CUDA extension, a custom kernel or a corrupt mmap'd data file), not restarted",
        False,
        diag.evidence + [f"{earlier} earlier native crash(es) in this run were restarted"],
        "run the step under gdb or with PYTHONFAULTHANDLER=1 to get the native stack",
        diag.step,
        diag.signature,
    )


def early_exit(
    diag: Diagnosis, expected_step: int | None, reached_step: int | None, missing_final: str = ""
) -> Diagnosis:
    """Exit 0 before the expected final step (or without the expected final checkpoint)."""
    if diag.cls != SUCCESS:
        return diag
    evidence = []
    if expected_step is not None and (reached_step is None or reached_step < expected_step):
        evidence.append(f"last logged step {reached_step}, expected {expected_step}")
    if missing_final:
        evidence.append(missing_final)
    if not evidence:
        return diag
    return Diagnosis(
        UNKNOWN,
        "exited-early",
        "the run exited with status 0 before it reached its expected end (a data loader that ran "
        "out, a max_steps/epochs setting, or a signal handler that exits 0); not restarted: a "
        "restart would most likely stop the same way",
        False,
        ["exit status 0", *evidence],
        "check the step/epoch limits and the data loader length, then resume from the latest checkpoint",
        reached_step,
        "unknown/exited-early",
    )


def diagnosis_from_dict(data: dict | None) -> Diagnosis | None:
    """Rebuild a :class:`Diagnosis` from its JSON form (state file)."""
    if not data:
        return None
    return Diagnosis(**{k: data.get(k) for k in Diagnosis.__dataclass_fields__ if k in data})
