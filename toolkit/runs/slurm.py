"""Slurm backend: batch script from :func:`toolkit.hardware.launch.build_launch` (the one sbatch
generator: ``--gres=gpu:K``, ``--time``, ``--output``, ``--requeue``, ``--signal=B:USR1@lead``),
submitted with ``sbatch --parsable``, tracked through :func:`toolkit.hardware.slurm.job_state`
(``squeue``, then ``sacct`` where accounting exists, then ``scontrol show job``), cancelled with
``scancel``.

What the job runs:
  ``PY SCRIPT ARGS`` / ``PY -m MODULE ARGS`` with ``--gpus`` > 1: ``srun PY -m
  torch.distributed.run --nproc-per-node G ... SCRIPT ARGS`` (torchrun through the interpreter
  the command names: a venv's ``torchrun`` entry point need not be on the job's PATH);
  anything else (one Python process, a shell command): the command as given, under ``srun``.

Formats relied on beyond those in :mod:`toolkit.hardware.slurm`:
  ``sbatch --parsable --chdir=DIR SCRIPT``        -> ``JOBID`` or ``JOBID;CLUSTER``
  ``scancel ID``                                   -> silent, exit 0; "scancel: error: Kill job
                                                     error on job id ID: ..." when already gone
The batch script also writes ``<run>/exit_code.json`` when the command ends for good: the exit
code is still known after the controller forgot the job (MinJobAge) on clusters without
accounting storage.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

from toolkit.errors import InputError
from toolkit.hardware.launch import Launch, LaunchRequest, build_launch
from toolkit.hardware.slurm import JobState, job_state, parse_sacct  # noqa: F401
from toolkit.runs import db
from toolkit.runs.local import EXIT_NAME, METRICS_NAME, _read_json
from toolkit.runs.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Run

RUNNING_STATES = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED"}
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_JOB_ID = re.compile(r"^\d+(_\d+)?$")
DEFAULT_TIME = "04:00:00"


def _cmd(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload]


def request_for(
    name: str,
    command: str,
    gpus: int,
    options: dict,
    output: str = "slurm-%j.out",
    exit_file: str | None = EXIT_NAME,
) -> LaunchRequest:
    """The :class:`LaunchRequest` for a run: torchrun through the command's own interpreter
    when it is ``PY SCRIPT ARGS`` (or ``PY -m MODULE ARGS``) asking for more than one GPU or
    node, else the command as given."""
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise InputError(f"run {name!r}: command is not valid shell ({exc})") from None
    nodes = int(options.get("nodes", 1))
    torchrun = (
        len(tokens) >= 2
        and _PYTHON.match(os.path.basename(tokens[0])) is not None
        and (gpus > 1 or nodes > 1)
    )
    lead = options.get("signal_lead_s")
    return LaunchRequest(
        env="slurm",
        script=tokens[1] if torchrun else "",
        script_args=tuple(tokens[2:]) if torchrun else (),
        python=tokens[0] if torchrun else "python",
        command=None if torchrun else command,
        nodes=nodes,
        gpus_per_node=gpus,
        time=str(options.get("time") or DEFAULT_TIME),
        partition=options.get("partition"),
        account=options.get("account"),
        job_name=name,
        output=output,
        signal_lead_s=None if lead is None else int(lead),
        exit_file=exit_file,
    )


def check(name: str, command: str, gpus: int, options: dict) -> Launch:
    """Build (not submit) a run's batch script, so that a run Slurm could never start is refused
    before it is registered; :class:`InputError` names what is wrong."""
    try:
        return build_launch(request_for(name, command, gpus, options))
    except InputError as exc:
        raise InputError(f"run {name!r}: {exc}") from None


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
    (folder / EXIT_NAME).unlink(missing_ok=True)  # written by this labcoat's previous submit
    launch = build_launch(
        request_for(
            run.name,
            run.command,
            run.gpus_requested,
            run.options,
            str(folder / "slurm-%j.out"),
            str(folder / EXIT_NAME),
        )
    )
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


def _exit_file(conn: sqlite3.Connection, run: Run) -> int | None:
    """The exit code the batch script recorded for this run's job, if any."""
    try:
        data = json.loads((db.runs_dir(conn) / run.name / EXIT_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or str(data.get("job")) != run.job_id:
        return None
    code = data.get("exit_code")
    return code if isinstance(code, int) else None


def _requeue_note(js: JobState) -> str:
    return f", requeued {js.restarts}x" if js.restarts else ""


def reconcile(conn: sqlite3.Connection, run: Run) -> bool:
    """Update a submitted Slurm run from Slurm. True if its status changed."""
    if run.backend != "slurm" or run.job_id is None or run.status not in (QUEUED, RUNNING):
        return False
    js = job_state(run.job_id)
    options = run.options
    if js is not None and js.restarts is not None and js.restarts != options.get("requeues", 0):
        options = {**options, "requeues": js.restarts}
    if js is not None and js.active:
        status = RUNNING if js.state in RUNNING_STATES else QUEUED
        fields: dict[str, object] = {
            "status": status,
            "note": f"slurm {js.state}{_requeue_note(js)}",
            "options": options,
        }
        if status == RUNNING and run.started is None:
            fields["started"] = db.now()
        db.update_run(conn, run.name, **fields)
        return status != run.status
    recorded = _exit_file(conn, run)
    if js is None:
        if recorded is None:
            db.update_run(
                conn,
                run.name,
                status=FAILED,
                ended=db.now(),
                note=f"job {run.job_id} vanished: Slurm has no record and it left no exit code",
            )
            return True
        js = JobState("COMPLETED" if recorded == 0 else "FAILED", recorded, None, EXIT_NAME)
    status = {"COMPLETED": SUCCEEDED, "CANCELLED": CANCELLED}.get(js.state, FAILED)
    metrics = _read_json(db.runs_dir(conn) / run.name / METRICS_NAME)
    db.update_run(
        conn,
        run.name,
        status=status,
        exit_code=js.exit_code if js.exit_code is not None else recorded,
        ended=db.now(),
        metrics=metrics,
        options=options,
        note=f"slurm {js.state}{_requeue_note(js)} (from {js.source})",
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
