"""Fixtures for the DCGM profiler tests: saved dmon captures and the fake dcgmi on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
FAKE_BIN = REPO / "tests" / "fakes" / "bin"
VENV_BIN = Path(sys.executable).parent  # holds python3 for the fake's `#!/usr/bin/env python3`
PROG = "python -m toolkit.profiling.dcgm_profiler"


def fixture_text(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def path_with(*dirs: Path) -> str:
    """PATH with ``dirs`` first, then the venv (python3), then the system directories."""
    return os.pathsep.join([*(str(d) for d in dirs), str(VENV_BIN), "/usr/bin", "/bin"])


class FakeDcgmi:
    """Controls the fake dcgmi: its scenario (FAKE_DCGMI_MODE) and the argv it recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, argv_file: Path) -> None:
        self._monkeypatch = monkeypatch
        self.argv_file = argv_file

    def mode(self, mode: str) -> None:
        self._monkeypatch.setenv("FAKE_DCGMI_MODE", mode)

    def calls(self) -> list[list[str]]:
        if not self.argv_file.exists():
            return []
        return [json.loads(line) for line in self.argv_file.read_text().splitlines()]


@pytest.fixture
def fake_dcgmi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeDcgmi:
    """tests/fakes/bin first on PATH, scenario 'ok', argv recorded to a temporary file."""
    argv_file = tmp_path / "dcgmi_argv.jsonl"
    monkeypatch.setenv("PATH", path_with(FAKE_BIN))
    monkeypatch.setenv("FAKE_DCGMI_ARGV_FILE", str(argv_file))
    monkeypatch.delenv("FAKE_DCGMI_MODE", raising=False)
    monkeypatch.delenv("FAKE_DCGMI_GPUS", raising=False)
    return FakeDcgmi(monkeypatch, argv_file)


@pytest.fixture
def no_dcgmi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH without any dcgmi."""
    monkeypatch.setenv("PATH", path_with(tmp_path))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m toolkit.profiling.dcgm_profiler ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.dcgm_profiler", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
