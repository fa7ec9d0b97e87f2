"""Asynchronous evaluation: run ``--eval-cmd`` on each new checkpoint, one at a time, in the
background; the supervisor polls it and never waits on it (except once at the very end)."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.watchdog.baseline import KV_RE


@dataclass
class EvalResult:
    """One finished evaluation; ``duration_s`` in seconds."""

    checkpoint: str
    returncode: int
    metrics: dict[str, float]
    log: str
    duration_s: float


def parse_eval_metrics(text: str) -> dict[str, float]:
    """Metrics from an eval's output: a JSON object on the last such line wins, else ``key=value``."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                data = json.loads(line)
                return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
            except ValueError:
                break
    return {k: float(v) for k, v in KV_RE.findall(text)}


@dataclass
class EvalRunner:
    """Queue of checkpoints to evaluate with ``template`` (``{checkpoint}`` is substituted)."""

    template: str
    out_dir: Path
    cwd: Path | None = None
    queue: list[str] = field(default_factory=list)
    current: tuple[str, subprocess.Popen, Path, float] | None = None

    def submit(self, checkpoint: str) -> None:
        if checkpoint not in self.queue:
            self.queue.append(checkpoint)

    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    def poll(self) -> list[EvalResult]:
        """Collect a finished eval and start the next; never blocks."""
        done: list[EvalResult] = []
        if self.current is not None:
            ckpt, proc, log, t0 = self.current
            if proc.poll() is not None:
                text = log.read_text(errors="replace")
                done.append(
                    EvalResult(
                        ckpt,
                        proc.returncode,
                        parse_eval_metrics(text),
                        str(log),
                        round(time.monotonic() - t0, 3),
                    )
                )
                self.current = None
        if self.current is None and self.queue:
            ckpt = self.queue.pop(0)
            argv = [a.replace("{checkpoint}", ckpt) for a in shlex.split(self.template)]
            log = self.out_dir / f"eval-{Path(ckpt).name}.log"
            with open(log, "ab") as fh:
                proc = subprocess.Popen(
                    argv,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.current = (ckpt, proc, log, time.monotonic())
        return done

    def drain(self, timeout_s: float) -> list[EvalResult]:
        """Wait up to ``timeout_s`` seconds for queued evals (end of supervision)."""
        results: list[EvalResult] = []
        deadline = time.monotonic() + timeout_s
        while self.busy() and time.monotonic() < deadline:
            results += self.poll()
            time.sleep(0.05)
        return results
