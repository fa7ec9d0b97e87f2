"""`hardware detect` and `launch --env auto` against the real cluster: outside a job (a controller
answers sinfo), inside a real job, and with Slurm tools but no controller. detect() runs with
use_torch=False (the torch fallback only lists GPUs, and importing torch costs seconds)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.slurm.conftest import PY, wait_for
from toolkit.hardware.detect import detect
from toolkit.hardware.launch import LaunchRequest, build_launch, resolve_env


def test_outside_a_job_is_slurm_login_and_launch_follows_the_partition() -> None:
    found = detect(use_torch=False)
    assert found.kind == "slurm_login"
    assert found.slurm is not None and not found.slurm.in_job
    [part] = found.slurm.partitions
    assert (part.name, part.default, part.gres, part.gpus_per_node, part.nodes) == (
        "debug", True, "(null)", 0, 2,
    )  # fmt: skip
    env, gpus, notes = resolve_env("auto", None, found)
    assert (env, gpus) == ("slurm", 0) and any("no GPUs" in n for n in notes)
    script = build_launch(LaunchRequest(env, "train.py", gpus_per_node=gpus)).script
    assert "--gres" not in script


def test_inside_a_real_job_is_slurm(tmp_path: Path) -> None:
    out = tmp_path / "detect.json"
    code = (
        "import json, dataclasses; from toolkit.hardware.detect import detect; "
        "print(json.dumps(dataclasses.asdict(detect(use_torch=False))))"
    )
    res = subprocess.run(
        ["sbatch", "--parsable", f"--output={out}", "--wrap", f"{PY} -c '{code}'"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    job = res.stdout.strip()
    text = wait_for(
        lambda: out.exists() and out.read_text().rstrip().endswith("}") and out.read_text()
    )
    found = json.loads(text)
    assert found["kind"] == "slurm"
    assert (found["slurm"]["in_job"], found["slurm"]["job_id"]) == (True, job)
    assert found["slurm"]["num_nodes"] == 1


def test_tools_without_a_controller_are_not_slurm(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slurm.conf").write_text("ClusterName=gone\nSlurmctldHost=localhost\n")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    found = detect(use_torch=False)
    assert found.kind == "cpu_only" and found.slurm is None
    assert any("no controller answers" in note for note in found.notes)
