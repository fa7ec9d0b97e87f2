"""Local launcher: each run is a detached process group writing to ``<runs>/<name>/output.log``.

The launcher starts ``wrapper.py`` as a new session (``start_new_session=True``); the wrapper runs
the command through ``/bin/sh -c`` in the run's working directory and writes
``<runs>/<name>/exit_code.json`` when it ends. :func:`reconcile` turns that file (or its absence
once the process is gone) into the run's final status. ``launch.json`` (pid, GPUs), written right
after spawning, lets the next start adopt a process whose start never reached the registry (the
launcher was killed before its transaction committed) instead of launching it twice.

GPUs: a run asking for K GPUs gets K free ones from :func:`toolkit.hardware.gpu_select.
select_free_gpus` (memory used and utilization under thresholds), minus the GPUs the registry
already assigned to running local runs on this host; the choice and the status change are made
in one write transaction, so two launchers cannot hand out the same GPU. Runs asking for 0 GPUs
start without GPU variables.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolkit import proctable
from toolkit.errors import InputError, UnavailableError
from toolkit.hardware.gpu_select import (
    DEFAULT_MAX_MEM_USED_PCT,
    DEFAULT_MAX_UTIL_PCT,
    select_free_gpus,
)
from toolkit.runs import db
from toolkit.runs.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Run

WRAPPER = Path(__file__).with_name("wrapper.py")
LOG_NAME = "output.log"
EXIT_NAME = "exit_code.json"
METRICS_NAME = "metrics.json"
LAUNCH_NAME = "launch.json"  # pid, process start, GPUs, start time: written right after spawning


@dataclass(frozen=True)
class GpuPolicy:
    """Thresholds for a free GPU (percent, 0..100) and NVML sampling."""

    max_mem_used_pct: float = DEFAULT_MAX_MEM_USED_PCT
    max_util_pct: float = DEFAULT_MAX_UTIL_PCT
    samples: int = 3
    interval_s: float = 0.2


# (count, exclude, policy) -> (chosen indices or None when not enough, reason)
GpuPicker = Callable[[int, set[int], GpuPolicy], tuple[list[int] | None, str]]


def host() -> str:
    return socket.gethostname()


def pick_gpus(count: int, exclude: set[int], policy: GpuPolicy) -> tuple[list[int] | None, str]:
    """``count`` free GPUs not in ``exclude`` (least loaded first; returned ascending)."""
    try:
        sel = select_free_gpus(
            count=count,
            max_mem_used_pct=policy.max_mem_used_pct,
            max_util_pct=policy.max_util_pct,
            samples=policy.samples,
            interval_s=policy.interval_s,
        )
    except UnavailableError as exc:
        return None, f"needs {count} GPU(s) but {exc}"
    free = sorted(
        (g for g in sel.gpus if g.free and g.index not in exclude),
        key=lambda g: (g.mem_used_pct or 0.0, g.util_pct or 0.0, g.index),
    )
    if len(free) >= count:
        return sorted(g.index for g in free[:count]), "ok"
    busy = [
        f"GPU {g.index}: {'assigned to a running run' if g.index in exclude else g.reason}"
        for g in sel.gpus
        if not (g.free and g.index not in exclude)
    ]
    return None, (
        f"waiting for {count} free GPU(s): {len(free)} of {len(sel.gpus)} free"
        + (f" ({'; '.join(busy)})" if busy else "")
    )


def assigned_gpus(conn: sqlite3.Connection, this_host: str) -> set[int]:
    rows = conn.execute(
        "SELECT gpus FROM runs WHERE status = ? AND backend = 'local' AND host = ?",
        (RUNNING, this_host),
    )
    return {int(i) for (raw,) in rows for i in json.loads(raw)}


def run_paths(conn: sqlite3.Connection, name: str) -> tuple[Path, Path, Path]:
    """(run folder, log, exit-code file)."""
    folder = db.runs_dir(conn) / name
    return folder, folder / LOG_NAME, folder / EXIT_NAME


def _proc_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """True while ``pid`` runs (a zombie counts as gone; a reused pid too when ``start`` known)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    if state in ("Z", "X"):
        return False
    return start is None or _proc_start(pid) in (None, start)


def group_pids(run: Run) -> list[int]:
    """Live processes of the run's process group (the wrapper leads a new session, so the
    group id is the recorded pid); empty when the group is gone or its start is unknown."""
    start = run.options.get("proc_start")
    if run.pid is None or start is None:
        return []
    return proctable.group_alive(run.pid, start)


def start(
    conn: sqlite3.Connection, run: Run, policy: GpuPolicy, picker: GpuPicker = pick_gpus
) -> tuple[bool, str]:
    """Start queued local run ``run`` now if its GPUs are free; ``(started, note)``.

    Call inside :func:`db.transaction` (the GPU choice must not interleave with another start).
    """
    this_host = host()
    gpus: list[int] = []
    if run.gpus_requested > 0:
        chosen, reason = picker(run.gpus_requested, assigned_gpus(conn, this_host), policy)
        if chosen is None:
            db.update_run(conn, run.name, note=reason)
            return False, reason
        gpus = chosen
    folder, log, exit_file = run_paths(conn, run.name)
    adopted = _adopt(conn, run, folder, this_host)
    if adopted is not None:
        return True, adopted
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (exit_file, folder / METRICS_NAME, folder / LAUNCH_NAME):
        stale.unlink(missing_ok=True)
    env = {**os.environ, **run.env}
    env.update(
        LABCOAT_RUN_NAME=run.name,
        LABCOAT_RUN_DIR=str(folder),
        LABCOAT_METRICS_FILE=str(folder / METRICS_NAME),
    )
    if gpus:
        env.update(CUDA_DEVICE_ORDER="PCI_BUS_ID", CUDA_VISIBLE_DEVICES=",".join(map(str, gpus)))
    started = db.now()
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, str(WRAPPER), str(exit_file), run.command],
                cwd=run.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        note = f"could not start in {run.workdir}: {exc.strerror or exc}"
        db.update_run(conn, run.name, status=FAILED, note=note, ended=started, host=this_host)
        return False, note
    options = {**run.options, "proc_start": _proc_start(proc.pid)}
    _write_json(
        folder / LAUNCH_NAME,
        {"pid": proc.pid, "proc_start": options["proc_start"], "gpus": gpus, "started": started},
    )
    db.update_run(
        conn,
        run.name,
        status=RUNNING,
        pid=proc.pid,
        host=this_host,
        gpus=gpus,
        started=started,
        log_path=str(log),
        options=options,
        note=None,
    )
    return True, "started" + (f" on GPU {','.join(map(str, gpus))}" if gpus else "")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _adopt(conn: sqlite3.Connection, run: Run, folder: Path, this_host: str) -> str | None:
    """Record a process an earlier start spawned but never committed to the registry.

    A launcher killed between spawning a run and committing the transaction leaves the run
    ``queued`` with its process alive (or already finished). Runs are never requeued, so a
    ``launch.json`` in a queued run's folder is that process: it is recorded as running (the
    exit-code file then settles it) instead of being launched a second time. Returns the note,
    or None when there is nothing to adopt.
    """
    launch = _read_json(folder / LAUNCH_NAME)
    if launch is None or not isinstance(launch.get("pid"), int):
        return None
    pid, proc_start = launch["pid"], launch.get("proc_start")
    _, log, exit_file = run_paths(conn, run.name)
    if not pid_alive(pid, proc_start) and not exit_file.exists():
        return None  # gone without a trace: start afresh
    db.update_run(
        conn,
        run.name,
        status=RUNNING,
        pid=pid,
        host=this_host,
        gpus=launch.get("gpus") or [],
        started=launch.get("started") or db.now(),
        log_path=str(log),
        options={**run.options, "proc_start": proc_start},
        note="adopted: an earlier start spawned it but was not recorded",
    )
    return f"adopted pid {pid}: an earlier start spawned it but was not recorded"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def reconcile(conn: sqlite3.Connection, run: Run) -> bool:
    """Settle running local run ``run`` from its exit-code file / pid. True if it changed.

    Runs started on another host are left alone (their pids mean nothing here).
    """
    if run.status != RUNNING or run.backend != "local" or run.host != host() or run.pid is None:
        return False
    folder, _, exit_file = run_paths(conn, run.name)
    result = _read_json(exit_file)
    if result is None:
        if pid_alive(run.pid, run.options.get("proc_start")):
            return False
        left = group_pids(run)
        if left:  # the wrapper was killed, the command runs on in its group: still running
            note = f"pid {run.pid} (the wrapper) is gone; its process group runs on (pids {', '.join(map(str, left[:5]))})"
            if run.note != note:
                db.update_run(conn, run.name, note=note)
            return False
        result = _read_json(exit_file)  # it may have ended between the two looks
    with db.transaction(conn):
        row = conn.execute("SELECT status FROM runs WHERE name = ?", (run.name,)).fetchone()
        if row is None or row[0] != RUNNING:
            return False
        if result is None:
            db.update_run(
                conn,
                run.name,
                status=FAILED,
                ended=db.now(),
                note=f"process vanished: pid {run.pid} (the wrapper) is gone, left no exit-code "
                f"file ({exit_file.name}) and its process group has ended: exit status unknown",
            )
            return True
        code = result.get("exit_code")
        db.update_run(
            conn,
            run.name,
            status=SUCCEEDED if code == 0 else FAILED,
            exit_code=code,
            ended=result.get("ended") or db.now(),
            metrics=_read_json(folder / METRICS_NAME),
            note=None if code == 0 else _exit_note(code),
        )
    return True


def _exit_note(code: object) -> str:
    if isinstance(code, int) and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def cancel(conn: sqlite3.Connection, run: Run, grace_s: float = 10.0) -> str:
    """Stop a local run: SIGTERM to its process group, SIGKILL after ``grace_s``."""
    if run.status == QUEUED:
        db.update_run(
            conn, run.name, status=CANCELLED, ended=db.now(), note="cancelled while queued"
        )
        return "cancelled while queued"
    if run.host != host():
        raise InputError(f"run {run.name!r} runs on {run.host}; cancel it there")
    assert run.pid is not None
    _, _, exit_file = run_paths(conn, run.name)
    start = run.options.get("proc_start")

    def running() -> bool:
        return pid_alive(run.pid, start) or bool(group_pids(run))

    how = "SIGTERM"
    if running():  # never signal a group whose number now belongs to someone else
        proctable.kill_group(run.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and running():
        time.sleep(0.05)
    if running():
        how = "SIGKILL"
        proctable.kill_group(run.pid, signal.SIGKILL)
        while running() and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    result = _read_json(exit_file) or {}
    db.update_run(
        conn,
        run.name,
        status=CANCELLED,
        exit_code=result.get("exit_code"),
        ended=result.get("ended") or db.now(),
        note=f"cancelled ({how} to process group {run.pid})",
    )
    return f"cancelled ({how})"
