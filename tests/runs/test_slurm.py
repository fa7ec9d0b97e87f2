"""Slurm backend against fake sbatch/squeue/sacct/scancel that print the real formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runs.conftest import cli, cli_json
from toolkit.errors import InputError
from toolkit.runs import control, db, slurm


def _calls(state: Path) -> list[list[str]]:
    log = state.with_name("slurm_calls.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _submit(conn, name: str, command: str = "python train.py --lr 3e-4", **extra) -> db.Run:
    db.create_run(conn, name=name, command=command, backend="slurm", **extra)
    [result] = control.start_runs(conn, [name])
    assert result.started, result.note
    return db.get_run(conn, name)


def test_submit_track_complete(conn, slurm: Path, project: Path) -> None:
    run = _submit(conn, "s1", gpus=4, options={"time": "02:00:00", "partition": "gpu"})
    assert run.job_id == "4242" and run.status == "queued"
    script = (project / ".labcoat" / "runs" / "s1" / "job.sbatch").read_text()
    for line in (
        "#SBATCH --job-name=s1",
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --time=02:00:00",
        f"#SBATCH --output={project}/.labcoat/runs/s1/slurm-%j.out",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@300",
    ):
        assert line in script
    assert "srun --kill-on-bad-exit=1 torchrun --nnodes 1 --nproc-per-node 4" in script
    assert script.count(" train.py --lr 3e-4 &") == 1
    sbatch = [c for c in _calls(slurm) if c[0] == "sbatch"][0]
    assert sbatch[1:3] == ["--parsable", f"--chdir={project}"]
    assert json.loads(slurm.read_text())["jobs"]["4242"]["script"] == script
    assert run.log_path == f"{project}/.labcoat/runs/s1/slurm-4242.out"
    # PENDING -> RUNNING -> COMPLETED 0:0, one squeue call per reconcile
    control.reconcile_all(conn)
    assert (
        db.get_run(conn, "s1").status == "queued" and db.get_run(conn, "s1").note == "slurm PENDING"
    )
    control.reconcile_all(conn)
    mid = db.get_run(conn, "s1")
    assert mid.status == "running" and mid.started is not None
    control.reconcile_all(conn)
    done = db.get_run(conn, "s1")
    assert done.status == "succeeded" and done.exit_code == 0 and done.note == "slurm COMPLETED"
    assert ["sacct", "-j", "4242", "-n", "-P", "-o", "JobID,State,ExitCode"] in _calls(slurm)
    assert control.reconcile_all(conn) == []  # settled: no more squeue calls
    assert sum(c[0] == "squeue" for c in _calls(slurm)) == 3


def test_failed_and_timeout_jobs(conn, slurm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SBATCH_SEGMENTS", '[["RUNNING", "FAILED 2:0"]]')
    _submit(conn, "bad")
    monkeypatch.setenv("FAKE_SBATCH_SEGMENTS", '[["TIMEOUT 0:15"]]')
    _submit(conn, "slow")
    for _ in range(3):
        control.reconcile_all(conn)
    bad, slow = db.get_run(conn, "bad"), db.get_run(conn, "slow")
    assert (bad.status, bad.exit_code, bad.note) == ("failed", 2, "slurm FAILED")
    assert (slow.status, slow.exit_code, slow.note) == ("failed", -15, "slurm TIMEOUT")


def test_cancel_through_scancel(conn, slurm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SBATCH_SEGMENTS", '[["PENDING", "RUNNING"]]')
    run = _submit(conn, "c1")
    control.reconcile_all(conn)
    control.reconcile_all(conn)
    assert db.get_run(conn, "c1").status == "running"
    ok, note = control.cancel_run(conn, "c1")
    assert ok and note == f"scancel {run.job_id}"
    assert db.get_run(conn, "c1").status == "cancelled"
    assert ["scancel", run.job_id] in _calls(slurm)
    # the job's end as sacct reports it does not undo the cancel
    control.reconcile_all(conn)
    assert db.get_run(conn, "c1").status == "cancelled"


def test_scancel_on_finished_job_reconciles(conn, slurm: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_SBATCH_SEGMENTS", '[["COMPLETED 0:0"]]')
    _submit(conn, "done")
    # squeue shows COMPLETED once, then the job is gone; cancel finds it over
    ok, note = control.cancel_run(conn, "done")
    assert not ok and "already succeeded" in note


def test_sbatch_failure_and_parsable_cluster(conn, slurm: Path, monkeypatch) -> None:
    monkeypatch.setenv(
        "FAKE_SBATCH_FAIL", "Invalid account or account/partition combination specified"
    )
    db.create_run(conn, name="nope", command="python t.py", backend="slurm")
    [result] = control.start_runs(conn, ["nope"])
    assert not result.started and result.status == "failed"
    assert (
        "sbatch failed: sbatch: error: Batch job submission failed: Invalid account" in result.note
    )
    monkeypatch.delenv("FAKE_SBATCH_FAIL")
    monkeypatch.setenv("FAKE_SBATCH_CLUSTER", "alpha")
    assert _submit(conn, "multi").job_id == "4242"  # printed as 4242;alpha


def test_parse_job_id_and_sacct() -> None:
    assert slurm.parse_job_id("4242\n") == "4242"
    assert slurm.parse_job_id("4242;alpha\n") == "4242"
    with pytest.raises(ValueError):
        slurm.parse_job_id("Submitted batch job 4242\n")
    text = "77|CANCELLED by 1000|0:15\n77.batch|CANCELLED|0:15\n77.extern|COMPLETED|0:0\n"
    assert slurm.parse_sacct(text, "77") == ("CANCELLED", -15)
    assert slurm.parse_sacct("77|FAILED|1:0\n", "77") == ("FAILED", 1)
    assert slurm.parse_sacct("", "77") is None


def test_vanished_job(conn, slurm: Path) -> None:
    run = _submit(conn, "v")
    data = json.loads(slurm.read_text())
    del data["jobs"][run.job_id]
    slurm.write_text(json.dumps(data))
    control.reconcile_all(conn)
    after = db.get_run(conn, "v")
    assert after.status == "failed" and "vanished" in after.note


def test_non_python_command_refused(conn, slurm: Path) -> None:
    db.create_run(conn, name="sh", command="bash run.sh", backend="slurm")
    with pytest.raises(InputError, match="launches 'python SCRIPT ARGS'"):
        control.start_runs(conn, ["sh"])
    assert db.get_run(conn, "sh").status == "queued"


def test_cli_slurm_flow(project: Path, slurm: Path) -> None:
    res = cli(
        "run",
        "create",
        "--name",
        "k",
        "--backend",
        "slurm",
        "--gpus",
        "2",
        "--time",
        "30",
        "--command",
        "python -m mypkg.train --epochs 1",
        "--auto-start",
        cwd=project,
    )
    assert res.returncode == 0, res.stderr
    assert "submitted as job 4242" in res.stdout
    script = (project / ".labcoat" / "runs" / "k" / "job.sbatch").read_text()
    assert "#SBATCH --time=30" in script and "-m mypkg.train --epochs 1" in script
    for expected in ("queued", "running", "succeeded"):
        assert cli_json("run", "show", "k", cwd=project)["status"] == expected
    bad = cli(
        "run", "create", "--name", "k2", "--time", "30", "--command", "python t.py", cwd=project
    )
    assert bad.returncode == 2 and "need --backend slurm" in bad.stderr
