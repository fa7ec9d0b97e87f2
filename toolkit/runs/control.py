"""Backend-neutral run control: start queued runs (waiting for GPUs if asked), reconcile every
active run with reality, cancel."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from toolkit.errors import InputError
from toolkit.runs import db, local, slurm
from toolkit.runs.local import GpuPicker, GpuPolicy, pick_gpus
from toolkit.runs.models import FAILED, QUEUED, RUNNING, TERMINAL, Run


@dataclass(frozen=True)
class StartOptions:
    """``wait``: keep retrying runs that wait for GPUs every ``retry_delay_s`` seconds, for at
    most ``max_wait_s`` (None = no limit). Without ``wait`` such runs stay queued with a note."""

    policy: GpuPolicy = field(default_factory=GpuPolicy)
    wait: bool = False
    retry_delay_s: float = 10.0
    max_wait_s: float | None = None


@dataclass
class StartResult:
    run: str
    started: bool
    status: str
    note: str


def reconcile_all(conn: sqlite3.Connection) -> list[str]:
    """Settle every active run this process can check: local runs of this host (exit-code file
    or pid) and submitted Slurm jobs (squeue/sacct). Returns the names whose status changed."""
    rows = conn.execute(
        "SELECT name FROM runs WHERE (status = ? AND backend = 'local' AND host = ?) OR "
        "(status IN (?, ?) AND backend = 'slurm' AND job_id IS NOT NULL) ORDER BY id",
        (RUNNING, local.host(), QUEUED, RUNNING),
    ).fetchall()
    changed = []
    for (name,) in rows:
        if reconcile_run(conn, db.get_run(conn, name)):
            changed.append(name)
    return changed


def reconcile_run(conn: sqlite3.Connection, run: Run) -> bool:
    if run.backend == "slurm":
        return slurm.reconcile(conn, run)
    return local.reconcile(conn, run)


def _start_one(
    conn: sqlite3.Connection, name: str, options: StartOptions, picker: GpuPicker
) -> StartResult:
    with db.transaction(conn):
        run = db.get_run(conn, name)
        if run.status != QUEUED or run.job_id is not None:
            what = f"job {run.job_id}" if run.job_id else run.status
            return StartResult(name, False, run.status, f"not startable: already {what}")
        if run.backend == "slurm":
            try:
                ok, note = slurm.submit(conn, run)
            except InputError as exc:  # never submittable: fail it rather than leave it queued
                ok, note = False, f"not submitted: {exc}"
                db.update_run(conn, name, status=FAILED, ended=db.now(), note=note)
        else:
            ok, note = local.start(conn, run, options.policy, picker)
        status = db.get_run(conn, name).status
    return StartResult(name, ok, status, note)


def start_runs(
    conn: sqlite3.Connection,
    names: Sequence[str],
    options: StartOptions | None = None,
    picker: GpuPicker = pick_gpus,
    sleep: Callable[[float], None] = time.sleep,
) -> list[StartResult]:
    """Start the named queued runs in order. Runs that wait for GPUs stay queued (note says
    why) or, with ``options.wait``, are retried until started or ``max_wait_s`` runs out."""
    options = options or StartOptions()
    results: dict[str, StartResult] = {}
    pending = list(names)
    deadline = None if options.max_wait_s is None else time.monotonic() + options.max_wait_s
    while True:
        waiting = []
        for name in pending:
            result = _start_one(conn, name, options, picker)
            results[name] = result
            if not result.started and result.status == QUEUED and result.note.startswith("waiting"):
                waiting.append(name)
        pending = waiting
        if not pending or not options.wait:
            break
        if deadline is not None and time.monotonic() + options.retry_delay_s > deadline:
            for name in pending:
                results[name].note += f" (gave up after --max-wait {options.max_wait_s:g} s)"
            break
        sleep(options.retry_delay_s)
        reconcile_all(conn)  # finished runs free their GPUs
    return [results[n] for n in names]


def cancel_run(conn: sqlite3.Connection, name: str, grace_s: float = 10.0) -> tuple[bool, str]:
    """``(cancelled, note)``; a run that already ended is left as it is."""
    run = db.get_run(conn, name)
    if reconcile_run(conn, run):
        run = db.get_run(conn, name)
    orphaned = run.backend == "local" and run.host == local.host() and local.group_pids(run)
    if run.status in TERMINAL and not orphaned:
        return False, f"run {name!r} already {run.status}; nothing to cancel"
    if run.backend == "slurm":
        return True, slurm.cancel(conn, run)
    return True, local.cancel(conn, run, grace_s)
