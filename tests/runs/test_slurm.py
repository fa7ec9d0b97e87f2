"""Slurm backend paths the real one-node cluster (tests/slurm) cannot produce on demand, against
fake sbatch/squeue/sacct/scancel that print the real formats: a cluster with accounting storage
(sacct answers), GPUs (--gres), a federation (``ID;CLUSTER``), a job the controller has forgotten.
Submitting, exit codes, shell commands, cancel and requeue run on the real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.runs import control, db
from toolkit.runs import slurm as backend


def _calls(state: Path) -> list[list[str]]:
    log = state.with_name("slurm_calls.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _submit(conn, name: str, command: str = "python train.py --lr 3e-4", **extra) -> db.Run:
    db.create_run(conn, name=name, command=command, backend="slurm", **extra)
    [result] = control.start_runs(conn, [name])
    assert result.started, result.note
    return db.get_run(conn, name)


def test_gpus_go_through_torch_distributed_run_of_the_named_python(
    conn, slurm: Path, project: Path
) -> None:
    # fake: the real test cluster has no GPUs, and sbatch refuses --gres=gpu:4 there
    run = _submit(
        conn,
        "s1",
        command="/opt/venv/bin/python train.py --lr 3e-4",
        gpus=4,
        options={"time": "02:00:00", "partition": "gpu"},
    )
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
    assert (
        "srun --kill-on-bad-exit=1 /opt/venv/bin/python -m torch.distributed.run --nnodes 1 "
        "--nproc-per-node 4" in script
    )
    assert script.count(" train.py --lr 3e-4 &") == 1
    sbatch = [c for c in _calls(slurm) if c[0] == "sbatch"][0]
    assert sbatch[1:3] == ["--parsable", f"--chdir={project}"]
    assert json.loads(slurm.read_text())["jobs"]["4242"]["script"] == script


def test_sacct_where_accounting_exists(conn, slurm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # fake: the test cluster runs without accounting storage (sacct refuses there)
    monkeypatch.setenv("FAKE_SBATCH_SEGMENTS", '[["RUNNING", "FAILED 2:0"]]')
    _submit(conn, "bad")
    monkeypatch.setenv("FAKE_SBATCH_SEGMENTS", '[["TIMEOUT 0:15"]]')
    _submit(conn, "slow")
    for _ in range(3):
        control.reconcile_all(conn)
    bad, slow = db.get_run(conn, "bad"), db.get_run(conn, "slow")
    assert (bad.status, bad.exit_code, bad.note) == ("failed", 2, "slurm FAILED (from sacct)")
    assert (slow.status, slow.exit_code, slow.note) == ("failed", -15, "slurm TIMEOUT (from sacct)")
    assert ["sacct", "-j", "4242", "-n", "-P", "-o", "JobID,State,ExitCode"] in _calls(slurm)
    assert control.reconcile_all(conn) == []  # settled: no more squeue calls


def test_requeues_counted_from_squeue(conn, slurm: Path, monkeypatch) -> None:
    # fake: preemption storms cannot be produced on demand
    monkeypatch.setenv(
        "FAKE_SBATCH_SEGMENTS", '[["RUNNING"], ["RUNNING"], ["RUNNING", "COMPLETED 0:0"]]'
    )
    run = _submit(conn, "pre")
    data = json.loads(slurm.read_text())
    data["jobs"][run.job_id].update(segment=2, requeues=2)
    slurm.write_text(json.dumps(data))
    control.reconcile_all(conn)
    mid = db.get_run(conn, "pre")
    assert mid.status == "running" and mid.note == "slurm RUNNING, requeued 2x"
    assert mid.options["requeues"] == 2
    control.reconcile_all(conn)
    assert db.get_run(conn, "pre").status == "succeeded"


def test_parsable_cluster_suffix(conn, slurm: Path, monkeypatch) -> None:
    # fake: a federation of clusters prints ID;CLUSTER
    monkeypatch.setenv("FAKE_SBATCH_CLUSTER", "alpha")
    assert _submit(conn, "multi").job_id == "4242"  # printed as 4242;alpha


def test_parse_job_id_and_sacct() -> None:
    assert backend.parse_job_id("4242\n") == "4242"
    assert backend.parse_job_id("4242;alpha\n") == "4242"
    with pytest.raises(ValueError):
        backend.parse_job_id("Submitted batch job 4242\n")
    text = "77|CANCELLED by 1000|0:15\n77.batch|CANCELLED|0:15\n77.extern|COMPLETED|0:0\n"
    assert backend.parse_sacct(text, "77") == ("CANCELLED", -15)
    assert backend.parse_sacct("77|FAILED|1:0\n", "77") == ("FAILED", 1)
    assert backend.parse_sacct("", "77") is None


def _forget(slurm: Path, job: str) -> None:
    """The controller forgets an ended job after MinJobAge (fake: minutes on the real one)."""
    data = json.loads(slurm.read_text())
    del data["jobs"][job]
    slurm.write_text(json.dumps(data))


def test_forgotten_job_settles_from_its_exit_file_else_vanishes(conn, slurm: Path) -> None:
    run = _submit(conn, "v")
    gone = _submit(conn, "w")
    _forget(slurm, run.job_id)
    _forget(slurm, gone.job_id)
    exit_file = db.runs_dir(conn) / "v" / "exit_code.json"
    exit_file.write_text(json.dumps({"exit_code": 3, "job": run.job_id}))
    control.reconcile_all(conn)
    v, w = db.get_run(conn, "v"), db.get_run(conn, "w")
    assert (v.status, v.exit_code, v.note) == ("failed", 3, "slurm FAILED (from exit_code.json)")
    assert w.status == "failed" and "vanished" in w.note


def test_unsubmittable_run_fails_instead_of_staying_queued(conn, slurm: Path) -> None:
    # registered through the Python API, which does not check the script first
    db.create_run(conn, name="x", command="true", backend="slurm", options={"time": "soon"})
    [result] = control.start_runs(conn, ["x"])
    assert not result.started and result.status == "failed"
    assert "--time" in db.get_run(conn, "x").note
    with pytest.raises(InputError, match="run 'y': --time"):
        backend.check("y", "true", 0, {"time": "soon"})
