"""`hardware detect` and `launch --env auto` against the real cluster: outside a job (a controller
answers sinfo), inside a real job, and with Slurm tools but no controller."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.slurm.conftest import PY, wait_for


def hardware(*args: str, env: dict[str, str] | None = None) -> dict:
    res = subprocess.run(
        [PY, "-m", "toolkit.hardware", *args, "--format", "json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_outside_a_job_is_slurm_login_and_launch_follows_the_partition() -> None:
    found = hardware("detect")
    assert found["kind"] == "slurm_login"
    assert found["slurm"]["in_job"] is False
    [part] = found["slurm"]["partitions"]
    assert (part["name"], part["default"], part["gres"], part["gpus_per_node"], part["nodes"]) == (
        "debug", True, "(null)", 0, 1,
    )  # fmt: skip
    launch = hardware("launch", "--script", "train.py")
    assert (launch["env"], launch["gpus_per_node"]) == ("slurm", 0)
    assert "--gres" not in launch["script"]


def test_inside_a_real_job_is_slurm(tmp_path: Path) -> None:
    out = tmp_path / "detect.json"
    res = subprocess.run(
        ["sbatch", "--parsable", f"--output={out}", "--wrap",
         f"{PY} -m toolkit.hardware detect --format json"],
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


def test_tools_without_a_controller_are_not_slurm(slurm_env: dict[str, str], tmp_path) -> None:
    (tmp_path / "slurm.conf").write_text("ClusterName=gone\nSlurmctldHost=localhost\n")
    env = {**slurm_env, "SLURM_CONF": str(tmp_path / "slurm.conf")}
    found = hardware("detect", env=env)
    assert found["kind"] == "cpu_only" and found["slurm"] is None
    assert any("no controller answers" in note for note in found["notes"])
