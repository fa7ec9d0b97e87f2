"""Follow a growing training log and report problems as they appear (``logs watch``).

Every ``interval_s`` seconds (0.5 s) the log's size and modification time are checked; when
they changed, the log is read again with :func:`toolkit.logs.readers.read_log` and the
detectors run over it. Findings of the live kinds (NaN/Inf, loss and grad-norm spikes,
divergence, throughput drops) not reported before, keyed by (kind, metric, first step), are
reported at once. After-the-fact kinds (plateau, overfitting, lr schedule) wait for the final
pass when the watch ends. After a full pass of T seconds the next waits at least 2T, so the
full passes never take more than about a third of a core.

NaN/Inf do not wait for a pass: every ``interval_s`` the lines appended since the last look
(JSONL or key=value text) are scanned for non-finite values, so a NaN is reported within about
one interval however long the log is (the full pass over a 1M-line log takes seconds).

The watch ends when the process ``pid`` exits, after ``idle_s`` seconds without growth,
after ``max_s`` seconds, at the first error-level finding with ``exit_on_error``, or on Ctrl-C.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.errors import InputError
from toolkit.logs.config import Thresholds
from toolkit.logs.detectors import Finding, _causes, analyze
from toolkit.logs.readers import read_log
from toolkit.logs.readers.text import parse_line
from toolkit.logs.series import canonical_role, step_key
from toolkit.watchdog.process import alive

TAIL_CHUNK = 64 << 20  # most bytes the NaN scan reads per look
LIVE_KINDS = ("nan_inf", "loss_spike", "grad_norm_spike", "divergence", "throughput_drop")


@dataclass
class Event:
    """One finding, reported ``after_s`` seconds into the watch at unix time ``detected_at``."""

    finding: Finding
    detected_at: float
    after_s: float
    final: bool = False  # reported by the final pass (after-the-fact kinds)


@dataclass
class WatchSummary:
    path: str
    reason: str  # why the watch ended
    passes: int
    duration_s: float
    events: list[Event] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(e.finding.severity == "error" for e in self.events)


def _signature(path: Path) -> tuple[int, int] | None:
    """(total bytes, newest mtime ns) of the file, or of the files under a directory."""
    try:
        if path.is_dir():
            files = [p.stat() for p in path.rglob("*") if p.is_file()]
            return (sum(s.st_size for s in files), max((s.st_mtime_ns for s in files), default=0))
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return None


class Tail:
    """The complete lines appended to a file since the last :meth:`lines` call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.line_no = path, 0, 0

    def lines(self) -> list[tuple[int, str]]:
        """``(0-based line number, text)`` of the new complete lines."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(TAIL_CHUNK)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        if end == 0:
            return []
        self.offset += end
        chunk = data[:end]
        first = self.line_no
        self.line_no += chunk.count(b"\n")
        lowered = chunk.lower()
        if b"nan" not in lowered and b"inf" not in lowered:
            return []
        text = chunk.decode("utf-8", "replace").split("\n")[:-1]
        return [
            (first + i, t) for i, t in enumerate(text) if "nan" in t.lower() or "inf" in t.lower()
        ]


def nonfinite_in(lines: list[tuple[int, str]]) -> list[Finding]:
    """NaN/Inf findings, one per metric (its first), from JSONL or key=value text lines."""
    out: dict[str, Finding] = {}
    for number, line in lines:
        text = line.strip()
        step, values = None, {}
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            name = step_key(list(obj))
            step = obj.get(name) if name else None
            values = {k: v for k, v in obj.items() if isinstance(v, float) and k != name}
        else:
            step, values = parse_line(text)
        for metric, value in values.items():
            if math.isfinite(value) or metric in out:
                continue
            at = int(step) if isinstance(step, int | float) else number
            vital = canonical_role(metric) in ("train_loss", "val_loss", "grad_norm", "lr")
            out[metric] = Finding(
                kind="nan_inf", severity="error" if vital else "warning", metric=metric,
                step_start=at, step_end=at,
                message=f"{metric} is {value} first at step {at} (seen in the lines just written)",
                evidence={"first_step": at, "first_value": str(value), "line": number + 1},
                causes=_causes("nan_inf"),
            )  # fmt: skip
    return list(out.values())


def watch(
    path: Path, on_event: Callable[[Event], None], *, fmt: str | None = None,
    thresholds: Thresholds | None = None, interval_s: float = 0.5, pid: int | None = None,
    idle_s: float | None = None, max_s: float | None = None, exit_on_error: bool = False,
) -> WatchSummary:  # fmt: skip
    """Follow ``path`` until a stop condition; ``on_event`` gets each new finding at once."""
    th = thresholds or Thresholds()
    t0 = time.monotonic()
    seen: set[tuple[str, str, int]] = set()
    summary = WatchSummary(str(path), "", 0, 0.0)
    last_sig, last_growth = None, t0
    last_run = None
    tail = Tail(path)
    next_full = t0

    def report(findings: list[Finding], final: bool) -> bool:
        hit_error = False
        for f in findings:
            key = (f.kind, f.metric, f.step_start)
            if key in seen or (not final and f.kind not in LIVE_KINDS):
                continue
            seen.add(key)
            event = Event(f, time.time(), round(time.monotonic() - t0, 3), final)
            summary.events.append(event)
            on_event(event)
            hit_error |= f.severity == "error"
        return hit_error

    while True:
        now = time.monotonic()
        ended = pid is not None and not alive(pid)
        if path.is_file() and report(nonfinite_in(tail.lines()), final=False) and exit_on_error:
            summary.reason = "error-level finding (--exit-on-error)"
            break
        sig = _signature(path)
        if sig is not None and sig != last_sig and now >= next_full:
            last_sig, last_growth = sig, now
            start = time.monotonic()
            try:
                last_run = read_log(path, fmt)
            except InputError as exc:  # empty, or not yet readable: try again next pass
                summary.warnings = [str(exc)]
            else:
                summary.passes += 1
                summary.warnings = list(last_run.warnings)
                if report(analyze(last_run, th).findings, final=False) and exit_on_error:
                    summary.reason = "error-level finding (--exit-on-error)"
                    break
            took = time.monotonic() - start
            next_full = time.monotonic() + 2 * took  # full passes use at most a third of a core
        elif sig is not None and sig != last_sig:
            last_growth = now  # growing; the next full pass is not due yet
        if ended:
            summary.reason = f"process {pid} exited"
            break
        if idle_s is not None and now - last_growth >= idle_s:
            summary.reason = f"no growth for {idle_s:g} s"
            break
        if max_s is not None and now - t0 >= max_s:
            summary.reason = f"--max-s {max_s:g} s reached"
            break
        try:
            time.sleep(interval_s)
        except KeyboardInterrupt:
            summary.reason = "interrupted"
            break
    if last_run is not None and not summary.reason.startswith("error-level"):
        if _signature(path) != last_sig:  # grew since the last pass
            try:
                last_run = read_log(path, fmt)
            except InputError:
                pass
        report(analyze(last_run, th).findings, final=True)
    if last_run is None and not summary.warnings:
        summary.warnings = [f"{path}: never appeared or never became readable"]
    summary.duration_s = round(time.monotonic() - t0, 3)
    return summary
