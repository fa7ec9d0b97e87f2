"""The session's real Slurm cluster (scripts/slurm_cluster.py), started once in the background.

``start_in_background`` launches ``slurm_cluster.py start`` (apt-get install when the packages
are missing, then the three daemons) without waiting; ``get`` waits for it and returns the
cluster, or the reason it cannot run here (exit 3: the packages cannot be installed), or raises
when it was expected to come up and did not; ``stop`` ends the daemons by PID and removes the
folder this session created.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm_cluster.py"
HERE = Path(__file__).resolve().parent
EXIT_NO_PACKAGES = 3


@dataclass
class Cluster:
    dir: Path
    slurm_conf: Path
    info: dict


_proc: subprocess.Popen | None = None
_dir: Path | None = None
_result: Cluster | str | None = None


def needs_cluster(item: pytest.Item) -> bool:
    return HERE in Path(str(item.fspath)).resolve().parents


def start_in_background() -> None:
    global _proc, _dir
    if _proc is not None:
        return
    _dir = Path(tempfile.mkdtemp(prefix="labcoat-slurm-"))
    _proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "start", "--dir", str(_dir), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def get() -> Cluster | str:
    """The running cluster, or why it cannot run here (a skip reason)."""
    global _result
    if _result is not None:
        return _result
    start_in_background()
    assert _proc is not None and _dir is not None
    out, err = _proc.communicate(timeout=600)
    if _proc.returncode == EXIT_NO_PACKAGES:
        _result = f"no Slurm here and it cannot be installed: {err.strip()}"
        return _result
    if _proc.returncode != 0:
        raise RuntimeError(f"the test cluster did not start (exit {_proc.returncode}): {err}")
    info = json.loads(out)
    _result = Cluster(_dir, Path(info["slurm_conf"]), info)
    return _result


def stop() -> None:
    if _proc is None or _dir is None:
        return
    if _proc.poll() is None:
        _proc.wait(timeout=600)
    subprocess.run([sys.executable, str(SCRIPT), "stop", "--dir", str(_dir)], timeout=120)
    shutil.rmtree(_dir, ignore_errors=True)
