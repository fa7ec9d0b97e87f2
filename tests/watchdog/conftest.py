"""Helpers for watchdog tests: run the real CLI on the real fake training script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE_TRAIN = Path(__file__).with_name("fake_train.py")
FAKE_BIN = REPO / "tests" / "fakes" / "bin"
PY = sys.executable


@dataclass
class Result:
    rc: int
    events: list[dict]
    run_dir: Path
    work: Path
    stderr: str

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def exits(self) -> list[dict]:
        return self.of("exit")


def watchdog_argv(
    work: Path, *extra: str, steps: int = 8, train_args: tuple[str, ...] = ()
) -> list[str]:
    return [
        PY,
        "-m",
        "toolkit.watchdog",
        "run",
        "--run-dir",
        str(work / "run"),
        "--cwd",
        str(work),
        "--checkpoints",
        str(work / "ckpt" / "checkpoint-*.pt"),
        "--resume",
        "--resume {checkpoint}",
        "--backoff",
        "0.05",
        "--poll",
        "0.05",
        "--kill-grace",
        "0.5",
        "--startup-grace",
        "60",
        *extra,
        "--",
        PY,
        str(FAKE_TRAIN),
        "--steps",
        str(steps),
        "--ckpt-dir",
        str(work / "ckpt"),
        *train_args,
    ]


def fault_env(work: Path, fault: str, step: int = 3, once: bool = True) -> dict[str, str]:
    env = {**os.environ, "FAULT": fault, "FAULT_STEP": str(step)}
    if once:
        env["FAULT_ONCE"] = str(work / f"once-{fault}")
    return env


def read_events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_watchdog(
    work: Path,
    fault: str = "",
    step: int = 3,
    once: bool = True,
    *extra: str,
    steps: int = 8,
    timeout: float = 240,
) -> Result:
    env = fault_env(work, fault, step, once) if fault else dict(os.environ)
    proc = subprocess.run(
        watchdog_argv(work, *extra, steps=steps),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=work,
    )
    return Result(proc.returncode, read_events(work / "run"), work / "run", work, proc.stderr)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "ckpt").mkdir()
    return tmp_path
