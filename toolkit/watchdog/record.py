"""The run folder: events JSONL, persisted state, the human ``experiment-context.md``.

Layout under ``RUN_DIR``::

    events.jsonl            one JSON object per line, appended, never rewritten
    state.json              the supervisor's state (atomically replaced), for re-attach / resume
    experiment-context.md   what happened, diagnosis, evidence, what to do (regenerated)
    logs/attempt-NNN.log    the child's stdout+stderr, one file per attempt, opened for append
    eval/                   async evaluation outputs
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.cli import to_jsonable
from toolkit.errors import InputError


@dataclass
class RunDir:
    """Paths of one run folder."""

    root: Path

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def context(self) -> Path:
        return self.root / "experiment-context.md"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def evals(self) -> Path:
        return self.root / "eval"

    def attempt_log(self, attempt: int) -> Path:
        return self.logs / f"attempt-{attempt:03d}.log"

    def ensure(self) -> None:
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            self.evals.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"--run-dir {self.root}: cannot make the run folder there ({exc.strerror}); "
                "expected a folder (new or from an earlier run)"
            ) from None


def append_event(run: RunDir, kind: str, **fields: Any) -> dict:
    """Append one event (``time`` is Unix seconds) and return it."""
    event = {"time": round(time.time(), 3), "event": kind, **to_jsonable(fields)}
    with open(run.events, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, allow_nan=False) + "\n")
        fh.flush()
    return event


def read_events(run: RunDir, last: int | None = None) -> list[dict]:
    """Events, oldest first (the last ``last`` when given); a torn final line is ignored."""
    if not run.events.is_file():
        return []
    out = []
    for line in run.events.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out[-last:] if last else out


def write_state(run: RunDir, state: dict) -> None:
    """Replace state.json atomically (write a temp file, fsync, rename)."""
    tmp = run.state.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(to_jsonable(state), fh, indent=2, allow_nan=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, run.state)


def read_state(run: RunDir) -> dict | None:
    """The persisted state, or None when there is none."""
    try:
        return json.loads(run.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else "-"


def write_context(run: RunDir, state: dict) -> None:
    """Regenerate experiment-context.md from the state and the events."""
    events = read_events(run)
    diag = state.get("last_diagnosis") or {}
    lines = [
        "# Experiment context (watchdog)",
        "",
        f"- Command: `{' '.join(state.get('cmd') or [])}`"
        if state.get("cmd")
        else f"- Slurm job: `{state.get('slurm_job')}`",
        f"- Status: **{state.get('status')}**",
        f"- Attempts: {state.get('attempt', 0)}; restarts: {len(state.get('restart_times', []))}",
        f"- Last attempt resumed from: `{state.get('checkpoint') or 'nothing (fresh start)'}`",
        f"- Latest complete checkpoint at stop: `{state.get('latest_checkpoint') or 'none'}`",
        f"- Updated: {_fmt_time(time.time())}",
        "",
        "## Diagnosis",
        "",
    ]
    if diag:
        lines += [
            f"- Class: **{diag.get('cls')} / {diag.get('subclass')}** (step {diag.get('step')})",
            f"- Meaning: {diag.get('meaning')}",
            f"- Restart: {'yes' if diag.get('restart') else 'no'}",
            "- Evidence:",
        ]
        lines += [f"    - `{e}`" for e in diag.get("evidence") or []]
    else:
        lines.append("- No failure so far.")
    lines += ["", "## What you should do", "", _advice(state, diag), "", "## What happened", ""]
    for ev in events[-40:]:
        detail = {k: v for k, v in ev.items() if k not in ("time", "event")}
        text = ", ".join(f"{k}={v}" for k, v in detail.items() if not isinstance(v, dict | list))
        lines.append(f"- {_fmt_time(ev.get('time'))} **{ev.get('event')}** {text}"[:400])
    aside = state.get("set_aside") or {}
    if aside:
        lines += ["", "## Checkpoints set aside (kept in place, not resumed from)", ""]
        lines += [f"- `{path}`: {why}" for path, why in sorted(aside.items())]
    alerts = [e for e in events if e.get("event") == "baseline_alert"]
    evals = [e for e in events if e.get("event") == "eval_done"]
    if evals:
        lines += ["", "## Evaluations", ""]
        lines += [
            f"- `{e.get('checkpoint')}`: {e.get('metrics')} (exit {e.get('returncode')})"
            for e in evals[-20:]
        ]
    if alerts:
        lines += ["", "## Baseline alerts", ""]
        lines += [
            f"- {a.get('metric')} at step {a.get('step')}: {a.get('value')} vs baseline "
            f"{a.get('baseline')} (relative difference {a.get('rel_diff')})"
            for a in alerts[-20:]
        ]
    lines += [
        "",
        "Nothing was deleted: every attempt's log is under `logs/`, checkpoints are untouched.",
        "",
    ]
    tmp = run.context.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, run.context)


def _advice(state: dict, diag: dict) -> str:
    status = state.get("status")
    if status == "finished":
        return "Nothing: the run finished."
    if status in ("running", "restarting", "attached"):
        return "Nothing yet: the watchdog is supervising the run."
    if status == "stopped" and diag.get("restart"):
        return (
            "The restart limit was reached: this transient-looking fault kept coming back. "
            "Check the node (dmesg, nvidia-smi, the scheduler's node state) before starting the "
            "watchdog again on this run folder."
        )
    if diag.get("action"):
        return f"{diag['action'].capitalize()}. Then start the watchdog again on this run folder; it resumes from the latest complete checkpoint."
    return "Read the last attempt's log under `logs/`, fix the cause, then start the watchdog again on this run folder."
