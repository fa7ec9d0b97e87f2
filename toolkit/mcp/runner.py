"""Run one toolkit command in a child process without blocking the server's event loop.

The child is ``python -m toolkit.<area> ... --format json`` in its own session (process group),
with ``LABCOAT_PROGRESS=1`` so long commands print ``labcoat-progress:`` lines on stderr
(:func:`toolkit.cli.report_progress`). Those lines, and a heartbeat every second, become
progress callbacks. When the awaiting task is cancelled (the client sent
``notifications/cancelled``) the whole group gets SIGTERM, then SIGKILL after a grace period,
and is reaped before the cancellation propagates.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import Process

import toolkit
from toolkit.cli import PROGRESS_ENV, PROGRESS_PREFIX

LAUNCHER_ENV = "LABCOAT_LAUNCHER"  # bin/labcoat: run each command through the plugin's launcher

Progress = Callable[[float, str], Awaitable[None]]  # (elapsed seconds, message)

HEARTBEAT_S = 1.0  # progress at least this often while the child runs (seconds)
MIN_INTERVAL_S = 0.25  # and at most this often (a child may report thousands of steps a second)
KILL_GRACE_S = 3.0  # SIGTERM -> SIGKILL on cancellation (seconds)
STDERR_KEEP = 200  # stderr lines kept for error messages


@dataclass
class Completed:
    """A finished command: exit code, stdout (the JSON), stderr without progress lines."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    command: list[str]  # what ran


def _signal_group(proc: Process, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _stop(proc: Process) -> None:
    """SIGTERM the child's process group, SIGKILL it after :data:`KILL_GRACE_S`, reap it.
    (Only for a child that has not exited: runs it launched live in their own sessions.)"""
    with anyio.CancelScope(shield=True):
        _signal_group(proc, signal.SIGTERM)
        with anyio.move_on_after(KILL_GRACE_S):
            await proc.wait()
        _signal_group(proc, signal.SIGKILL)  # the leader if still alive, and what it started
        await proc.wait()


def command(module: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """The child's command line and environment for ``python -m <module> <argv...>``.

    With ``LABCOAT_LAUNCHER`` set (the plugin's ``mcpServers`` entry sets it to
    ``bin/labcoat``) the launcher runs it (``labcoat compute memory ...``) and picks the
    interpreter: the user's for commands that import their training code and torch. Without
    it, this interpreter runs it, with the folder holding the imported ``toolkit`` package
    first on ``PYTHONPATH``."""
    env = {**os.environ, PROGRESS_ENV: "1", "PYTHONUNBUFFERED": "1"}
    launcher = os.environ.get(LAUNCHER_ENV)
    if launcher:
        return [launcher, module.removeprefix("toolkit."), *argv], env
    here = str(Path(toolkit.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-m", module, *argv], env


async def run(module: str, argv: list[str], progress: Progress | None = None) -> Completed:
    """Run ``python -m <module> <argv...>``; report progress while it runs."""
    cmd, env = command(module, argv)
    t0 = time.monotonic()
    proc = await anyio.open_process(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    out_chunks: list[bytes] = []
    err_lines: list[str] = []
    state = {"message": f"started python -m {module} {' '.join(argv[:2])}", "sent": -1.0}

    async def send() -> None:
        now = time.monotonic() - t0
        if progress is None or now - state["sent"] < MIN_INTERVAL_S:  # also keeps it increasing
            return
        state["sent"] = now
        await progress(round(now, 3), f"[{now:.0f} s] {state['message']}")

    async def read_stdout() -> None:
        assert proc.stdout is not None
        async for chunk in proc.stdout:
            out_chunks.append(chunk)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        buffer = b""
        async for chunk in proc.stderr:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if line.startswith(PROGRESS_PREFIX):
                    try:
                        state["message"] = json.loads(line[len(PROGRESS_PREFIX) :])["message"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    await send()
                else:
                    err_lines.append(line)
                    del err_lines[:-STDERR_KEEP]
        if buffer:
            err_lines.append(buffer.decode("utf-8", "replace"))

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            await send()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            async with anyio.create_task_group() as io:
                io.start_soon(read_stdout)
                io.start_soon(read_stderr)
            await proc.wait()
            tg.cancel_scope.cancel()
    finally:
        if proc.returncode is None:  # cancelled or failed while the child runs
            await _stop(proc)
    return Completed(
        returncode=proc.returncode if proc.returncode is not None else -1,
        stdout=b"".join(out_chunks).decode("utf-8", "replace"),
        stderr="\n".join(err_lines),
        wall_s=time.monotonic() - t0,
        command=cmd,
    )
