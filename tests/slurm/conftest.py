"""Fixtures for tests against the real one-node Slurm cluster (tests/slurm/cluster.py):
``cluster`` (skips only where Slurm cannot be installed), SLURM_CONF set for each test, the
training script the jobs run, and a poller."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runs.conftest import wait_for  # noqa: F401  (re-exported for tests/slurm)
from tests.slurm import cluster as _cluster
from tests.slurm.long_jobs import LongJobs

PY = sys.executable
TRAINER = Path(__file__).with_name("trainer.py")


@pytest.fixture(scope="session")
def cluster() -> _cluster.Cluster:
    found = _cluster.get()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(autouse=True)
def slurm_env(cluster: _cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test talks to the session's cluster: SLURM_CONF set, no job variables inherited."""
    for name in list(os.environ):
        if name.startswith(("SLURM_", "FAKE_", "LABCOAT_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_CONF", str(cluster.slurm_conf))
    return dict(os.environ)


def scontrol_job(job: str) -> dict[str, str]:
    """``scontrol show job -o`` as a dict (the test's own reading, not the toolkit's parser)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", job], capture_output=True, text=True, check=True
    ).stdout
    return dict(w.split("=", 1) for w in out.split() if "=" in w)


@pytest.fixture(scope="session")
def long_jobs(cluster: _cluster.Cluster) -> LongJobs:
    """The 1-minute jobs, submitted in the background right after the cluster came up."""
    jobs = _cluster.long_jobs()
    assert jobs is not None, "long jobs were not started (tests/slurm/test_watchdog.py selected?)"
    return jobs
