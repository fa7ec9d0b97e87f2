"""Fixtures for toolkit.hardware tests: the fake pynvml, a clean environment, subprocess runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
MIB = 1024**2


def load_fake_pynvml(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import tests/fakes/pynvml as ``pynvml`` (in sys.modules for this test only)."""
    spec = importlib.util.spec_from_file_location("pynvml", FAKES / "pynvml" / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    spec.loader.exec_module(module)
    return module


def device(name: str, memory_mib: int, pci_device_id: int, **extra: object) -> dict:
    return {"name": name, "memory_total": memory_mib * MIB, "pci_device_id": pci_device_id, **extra}


def scenario(devices: list[dict] | None = None, init_error: str | None = None) -> str:
    return json.dumps({"init_error": init_error, "devices": devices or []})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Slurm or CUDA_VISIBLE_DEVICES leaking in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("SLURM_") or name in ("CUDA_VISIBLE_DEVICES", "FAKE_PYNVML_SCENARIO"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch):
    """Returns ``use(devices=None, init_error=None)``: install the fake with that machine."""
    module = load_fake_pynvml(monkeypatch)

    def use(devices: list[dict] | None = None, init_error: str | None = None) -> ModuleType:
        monkeypatch.setenv("FAKE_PYNVML_SCENARIO", scenario(devices, init_error))
        return module

    return use


def run_cli(*args: str, fake_scenario: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m toolkit.hardware ARGS`` in a clean environment (no Slurm, no sinfo on PATH).

    With ``fake_scenario`` the fake pynvml is put ahead of site-packages via PYTHONPATH.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SLURM_") and key not in ("CUDA_VISIBLE_DEVICES", "PYTHONPATH")
    }
    env["PATH"] = str(Path(sys.executable).parent)
    if fake_scenario is not None:
        env["PYTHONPATH"] = str(FAKES)
        env["FAKE_PYNVML_SCENARIO"] = fake_scenario
    return subprocess.run(
        [sys.executable, "-m", "toolkit.hardware", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
