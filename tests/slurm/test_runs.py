"""The runs registry's Slurm backend against the real one-node cluster: exit codes, a 3x3
sweep, shell commands, cancel, and create --auto-start failures that leave nothing behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.slurm.conftest import PY, scontrol_job, wait_for

EXIT_WITH = """import sys
a, b = int(sys.argv[1]), int(sys.argv[2])
print(f"a={a} b={b}")
sys.exit(b if a == 1 else 0)
"""


def runs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "toolkit.runs", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def listed(cwd: Path) -> dict[str, dict]:
    res = runs("run", "list", "--format", "json", cwd=cwd)
    assert res.returncode == 0, res.stderr
    return {r["name"]: r for r in json.loads(res.stdout)}


def settled(cwd: Path, names: set[str], timeout: float = 90.0) -> dict[str, dict]:
    def done() -> dict[str, dict] | None:
        rows = listed(cwd)
        ended = {
            n: r for n, r in rows.items() if n in names and r["status"] not in ("queued", "running")
        }
        return rows if len(ended) == len(names) else None

    return wait_for(done, timeout, 0.5)  # type: ignore[return-value]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "exit_with.py").write_text(EXIT_WITH)
    return tmp_path


def test_exit_0_succeeds_and_exit_3_fails_with_its_code(project: Path) -> None:
    for name, b in (("ok", "0"), ("three", "3")):
        res = runs(
            "run", "create", "--name", name, "--backend", "slurm", "--time", "00:05:00",
            "--command", f"{PY} exit_with.py 1 {b}", "--auto-start", cwd=project,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        assert "submitted as job" in res.stdout
    rows = settled(project, {"ok", "three"})
    assert (rows["ok"]["status"], rows["ok"]["exit_code"]) == ("succeeded", 0)
    assert (rows["three"]["status"], rows["three"]["exit_code"]) == ("failed", 3)
    # no accounting storage on this cluster: the exit code came from scontrol show job
    assert "(from scontrol)" in rows["three"]["note"], rows["three"]["note"]
    assert scontrol_job(rows["three"]["job_id"])["ExitCode"] == "3:0"
    # one Python process: the command ran as given, through the interpreter it names
    script = (project / ".labcoat" / "runs" / "ok" / "job.sbatch").read_text()
    assert f"/bin/bash -c '{PY} exit_with.py 1 0'" in script
    assert "#SBATCH --signal=B:USR1@75" in script  # a quarter of the 5-minute limit
    log = runs("run", "logs", "three", cwd=project)
    assert "a=1 b=3" in log.stdout


def test_sweep_3x3_every_state_and_exit_code(project: Path) -> None:
    res = runs(
        "sweep", "grid", "--name", "g", "--param", "a=0,1,2", "--param", "b=0,2,5",
        "--backend", "slurm", "--command", f"{PY} exit_with.py {{a}} {{b}}", "--auto-start",
        "--format", "json", cwd=project,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    started = json.loads(res.stdout)
    assert len(started) == 9 and all(r["started"] for r in started)
    names = {r["run"] for r in started}
    rows = settled(project, names, timeout=120)
    for name in names:
        row = rows[name]
        a, b = int(row["params"]["a"]), int(row["params"]["b"])
        code = b if a == 1 else 0
        assert row["exit_code"] == code, row
        assert row["status"] == ("succeeded" if code == 0 else "failed"), row
        assert f"a={a} b={b}" in Path(row["log_path"]).read_text()
    show = runs("sweep", "show", "--name", "g", "--format", "json", cwd=project)
    assert json.loads(show.stdout)["counts"] == {"succeeded": 7, "failed": 2}


def test_shell_command_runs_as_given(project: Path) -> None:
    res = runs(
        "run", "create", "--name", "sh", "--backend", "slurm",
        "--command", "echo from-shell $((6*7)) && exit 4", "--auto-start", cwd=project,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    row = settled(project, {"sh"})["sh"]
    assert (row["status"], row["exit_code"]) == ("failed", 4)
    assert "from-shell 42" in Path(row["log_path"]).read_text()


def test_cancel_reaches_slurm_and_the_registry(project: Path) -> None:
    res = runs(
        "run", "create", "--name", "long", "--backend", "slurm", "--command", "sleep 300",
        "--auto-start", cwd=project,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    wait_for(lambda: listed(project)["long"]["status"] == "running", 60, 0.5)
    res = runs("run", "cancel", "long", cwd=project)
    assert res.returncode == 0, res.stdout + res.stderr
    row = listed(project)["long"]
    assert row["status"] == "cancelled"
    wait_for(lambda: scontrol_job(row["job_id"])["JobState"] == "CANCELLED", 30, 0.5)
    again = runs("run", "cancel", "long", cwd=project)
    assert again.returncode == 1 and "already cancelled" in again.stdout
    assert listed(project)["long"]["status"] == "cancelled"  # Slurm's end does not undo it


def test_failed_create_auto_start_leaves_no_ghost(project: Path) -> None:
    # a time limit the USR1 lead does not fit: refused before anything is registered
    bad = runs(
        "run", "create", "--name", "tight", "--backend", "slurm", "--time", "00:05:00",
        "--command", "true", "--auto-start", cwd=project,
    )  # fmt: skip
    assert bad.returncode == 0, bad.stderr  # 5 minutes is fine: the lead scales (75 s)
    worse = runs(
        "run", "create", "--name", "never", "--backend", "slurm", "--time", "1:00:00:00",
        "--command", "true", "--auto-start", cwd=project,
    )  # fmt: skip
    assert worse.returncode == 2 and "--time" in worse.stderr
    # sbatch itself refuses (no such partition): the run is failed with sbatch's words
    refused = runs(
        "run", "create", "--name", "nopart", "--backend", "slurm", "--partition", "nosuch",
        "--command", "true", "--auto-start", cwd=project,
    )  # fmt: skip
    assert refused.returncode == 1
    rows = listed(project)
    assert "never" not in rows
    assert rows["nopart"]["status"] == "failed"
    assert "invalid partition" in rows["nopart"]["note"].lower()
    settled(project, {"tight"})
