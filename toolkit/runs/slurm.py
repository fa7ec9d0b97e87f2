"""Slurm backend: batch script from :func:`toolkit.hardware.launch.build_launch` (the one sbatch
generator: ``--gres=gpu:K``, ``--time``, ``--output``, ``--requeue``, ``--signal=B:USR1@lead``),
submitted with ``sbatch --parsable``, tracked with ``squeue`` / ``sacct``, cancelled with
``scancel``.

Formats relied on (Slurm 21-24):
  ``sbatch --parsable --chdir=DIR SCRIPT``        -> ``JOBID`` or ``JOBID;CLUSTER``
  ``squeue -j ID -h -o %T``                        -> ``PENDING`` / ``RUNNING`` ...; exit 1 with
                                                     "slurm_load_jobs error: Invalid job id
                                                     specified" once the job left the controller
  ``sacct -j ID -n -P -o JobID,State,ExitCode``    -> ``ID|COMPLETED|0:0`` then ``ID.batch|...``;
                                                     State may read ``CANCELLED by UID``
  ``scancel ID``                                   -> silent, exit 0; "scancel: error: Kill job
                                                     error on job id ID: ..." when already gone

The run's command must be ``python SCRIPT ARGS`` (or ``python -m MODULE ARGS``): the batch script
runs it through ``srun torchrun``, which starts the Python interpreter itself.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

from toolkit.errors import InputError
from toolkit.hardware.launch import LaunchRequest, build_launch
from toolkit.hardware.slurm import parse_sacct, sacct_state, squeue_state  # noqa: F401
from toolkit.runs import db
from toolkit.runs.local import METRICS_NAME, _read_json
from toolkit.runs.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Run

ACTIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "STOPPED",
    "RUNNING",
    "COMPLETING",
    "SIGNALING",
    "STAGE_OUT",
}
RUNNING_STATES = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED"}
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_JOB_ID = re.compile(r"^\d+(_\d+)?$")
DEFAULT_TIME = "04:00:00"


def _cmd(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload]


def launch_request(run: Run, output: str) -> LaunchRequest:
    """The :class:`LaunchRequest` for ``run``: its ``python`` command split into script and args."""
    try:
        tokens = shlex.split(run.command)
    except ValueError as exc:
        raise InputError(f"run {run.name!r}: command is not valid shell ({exc})") from None
    if len(tokens) < 2 or not _PYTHON.match(os.path.basename(tokens[0])):
        raise InputError(
            f"run {run.name!r}: the slurm backend launches 'python SCRIPT ARGS' through srun "
            f"torchrun; got {run.command!r} (put other commands in a script)"
        )
    opts = run.options
    return LaunchRequest(
        env="slurm",
        script=tokens[1],
        script_args=tuple(tokens[2:]),
        nodes=int(opts.get("nodes", 1)),
        gpus_per_node=run.gpus_requested,
        time=str(opts.get("time") or DEFAULT_TIME),
        partition=opts.get("partition"),
        account=opts.get("account"),
        job_name=run.name,
        output=output,
        signal_lead_s=int(opts.get("signal_lead_s", 300)),
    )


def parse_job_id(stdout: str) -> str:
    """Job id from ``sbatch --parsable`` output (``ID`` or ``ID;CLUSTER``, last line)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    job = lines[-1].split(";")[0] if lines else ""
    if not _JOB_ID.match(job):
        raise ValueError(f"sbatch printed no job id: {stdout.strip()[:200]!r}")
    return job


def submit(conn: sqlite3.Connection, run: Run) -> tuple[bool, str]:
    """Write ``<runs>/<name>/job.sbatch`` and submit it; ``(submitted, note)``."""
    folder = db.runs_dir(conn) / run.name
    folder.mkdir(parents=True, exist_ok=True)
    launch = build_launch(launch_request(run, str(folder / "slurm-%j.out")))
    assert launch.script is not None
    script = folder / "job.sbatch"
    script.write_text(launch.script)
    env = {
        **os.environ,
        **run.env,
        "LABCOAT_RUN_NAME": run.name,
        "LABCOAT_RUN_DIR": str(folder),
        "LABCOAT_METRICS_FILE": str(folder / METRICS_NAME),
    }
    try:
        res = _cmd(
            ["sbatch", "--parsable", f"--chdir={run.workdir}", str(script)],
            env=env,
            cwd=run.workdir,
        )
        job = parse_job_id(res.stdout) if res.returncode == 0 else None
        error = res.stderr.strip() or res.stdout.strip() or f"exit {res.returncode}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        job, error = None, str(exc)
    except ValueError as exc:
        job, error = None, str(exc)
    if job is None:
        note = f"sbatch failed: {error}"
        db.update_run(conn, run.name, status=FAILED, ended=db.now(), note=note)
        return False, note
    db.update_run(
        conn,
        run.name,
        job_id=job,
        host=None,
        log_path=str(folder / f"slurm-{job}.out"),
        note="submitted (slurm PENDING)",
        options={**run.options, "script": str(script)},
    )
    return True, f"submitted as job {job}"


def reconcile(conn: sqlite3.Connection, run: Run) -> bool:
    """Update a submitted Slurm run from squeue/sacct. True if its status changed."""
    if run.backend != "slurm" or run.job_id is None or run.status not in (QUEUED, RUNNING):
        return False
    state = squeue_state(run.job_id)
    if state in ACTIVE_STATES:
        status = RUNNING if state in RUNNING_STATES else QUEUED
        fields: dict[str, object] = {"status": status, "note": f"slurm {state}"}
        if status == RUNNING and run.started is None:
            fields["started"] = db.now()
        db.update_run(conn, run.name, **fields)
        return status != run.status
    end = sacct_state(run.job_id)
    if end is False:
        return False  # accounting unreachable: try again on the next command
    if end is None:
        if state is not None:
            return False  # squeue shows a state sacct does not know yet
        db.update_run(
            conn,
            run.name,
            status=FAILED,
            ended=db.now(),
            note=f"job {run.job_id} vanished: not in squeue and sacct has no record",
        )
        return True
    assert isinstance(end, tuple)
    slurm_state, rc = end
    if slurm_state in ACTIVE_STATES:
        return False
    status = {"COMPLETED": SUCCEEDED, "CANCELLED": CANCELLED}.get(slurm_state, FAILED)
    metrics = _read_json(db.runs_dir(conn) / run.name / METRICS_NAME)
    db.update_run(
        conn,
        run.name,
        status=status,
        exit_code=rc,
        ended=db.now(),
        metrics=metrics,
        note=f"slurm {slurm_state}",
    )
    return True


def cancel(conn: sqlite3.Connection, run: Run) -> str:
    if run.job_id is None:
        db.update_run(
            conn, run.name, status=CANCELLED, ended=db.now(), note="cancelled before submission"
        )
        return "cancelled before submission"
    try:
        res = _cmd(["scancel", run.job_id])
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"scancel {run.job_id} failed: {exc}") from None
    if res.returncode != 0:
        text = res.stderr.strip()
        if "completed" in text or "Invalid job id" in text:
            reconcile(conn, run)
            return f"job {run.job_id} had already ended: {text}"
        raise InputError(f"scancel {run.job_id} failed: {text or f'exit {res.returncode}'}")
    db.update_run(conn, run.name, status=CANCELLED, ended=db.now(), note=f"scancel {run.job_id}")
    return f"scancel {run.job_id}"


def script_path(run: Run) -> Path | None:
    raw = run.options.get("script")
    return Path(raw) if raw else None
