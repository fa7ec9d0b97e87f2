"""Fixtures for toolkit.runs tests: a registry in a temp project, the CLI as a subprocess,
fake Slurm commands on PATH, polling helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from toolkit.runs import db

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
PY = sys.executable


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("SLURM_", "FAKE_", "LABCOAT_")) or name == "CUDA_VISIBLE_DEVICES":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp project folder, the current directory for the test."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def dbpath(project: Path) -> Path:
    return project / ".labcoat" / "runs.db"


@pytest.fixture
def conn(dbpath: Path):
    connection = db.connect(dbpath)
    yield connection
    connection.close()


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m toolkit.runs ARGS`` in ``cwd``."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [PY, "-m", "toolkit.runs", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> object:
    res = cli(*args, "--format", "json", cwd=cwd, env=env)
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


@pytest.fixture
def slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake sbatch/squeue/sacct/scancel first on PATH; returns the state file."""
    state = tmp_path / "slurm_state.json"
    monkeypatch.setenv("PATH", f"{FAKES / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_STATE", str(state))
    monkeypatch.setenv("FAKE_SLURM_LOG", str(tmp_path / "slurm_calls.jsonl"))
    return state
