"""The session's real Slurm cluster (scripts/slurm_cluster.py, two slurmd nodes on this host),
started once in the background.

``start_in_background`` runs ``slurm_cluster.py start`` (apt-get install when the packages are
missing, then the three daemons) in a thread and, when asked, submits the 1-minute jobs of
tests/slurm/long_jobs.py as soon as the cluster is up, so both overlap the tests that run before
them. ``get`` waits for the cluster and returns it, or the reason it cannot run here (exit 3: the
packages cannot be installed), or raises when it should have come up and did not. ``stop`` ends
the long jobs' watchdogs and the daemons (by PID) and removes the folder this session created.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.slurm import long_jobs as _long

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_cluster.py"
HERE = Path(__file__).resolve().parent
EXIT_NO_PACKAGES = 3
NODES = 2  # two slurmd on this host: multi-node jobs (torchrun rendezvous) run for real


@dataclass
class Cluster:
    dir: Path
    slurm_conf: Path
    info: dict

    def env(self) -> dict[str, str]:
        """This process's environment without Slurm/fake/labcoat variables, plus SLURM_CONF."""
        clean = ("SLURM_", "FAKE_", "LABCOAT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(clean)}
        return {**env, "SLURM_CONF": str(self.slurm_conf)}


_dir: Path | None = None
_thread: threading.Thread | None = None
_result: Cluster | str | BaseException | None = None
_long_jobs: _long.LongJobs | BaseException | None = None


def needs_cluster(item: pytest.Item) -> bool:
    return HERE in Path(str(item.fspath)).resolve().parents


def needs_long_jobs(item: pytest.Item) -> bool:
    return needs_cluster(item) and Path(str(item.fspath)).name in _long.TESTS


def _start(with_long_jobs: bool) -> None:
    global _result, _long_jobs
    assert _dir is not None
    try:
        res = subprocess.run(
            [sys.executable, str(SCRIPT), "start", "--dir", str(_dir), "--nodes", str(NODES)]
            + ["--format", "json"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode == EXIT_NO_PACKAGES:
            _result = f"no Slurm here and it cannot be installed: {res.stderr.strip()}"
            return
        if res.returncode != 0:
            raise RuntimeError(
                f"the test cluster did not start (exit {res.returncode}): {res.stderr}"
            )
        info = json.loads(res.stdout)
        cluster = Cluster(_dir, Path(info["slurm_conf"]), info)
        _result = cluster
    except BaseException as exc:  # handed to the test that asks for the cluster
        _result = exc
        return
    if with_long_jobs:
        try:
            _long_jobs = _long.start(_dir / "long", cluster.env())
        except BaseException as exc:
            _long_jobs = exc


def start_in_background(with_long_jobs: bool = False) -> None:
    global _dir, _thread
    if _thread is not None:
        return
    _dir = Path(tempfile.mkdtemp(prefix="labcoat-slurm-"))
    _thread = threading.Thread(target=_start, args=(with_long_jobs,), daemon=True)
    _thread.start()


def get() -> Cluster | str:
    """The running cluster, or why it cannot run here (a skip reason)."""
    start_in_background()
    assert _thread is not None
    _thread.join(timeout=600)
    if isinstance(_result, BaseException):
        raise _result
    assert _result is not None, "the cluster start did not finish in 600 s"
    return _result


def long_jobs() -> _long.LongJobs | None:
    get()
    if isinstance(_long_jobs, BaseException):
        raise _long_jobs
    return _long_jobs


def stop() -> None:
    if _thread is None or _dir is None:
        return
    _thread.join(timeout=600)
    if isinstance(_long_jobs, _long.LongJobs):
        _long_jobs.stop()
    subprocess.run([sys.executable, str(SCRIPT), "stop", "--dir", str(_dir)], timeout=120)
    shutil.rmtree(_dir, ignore_errors=True)
