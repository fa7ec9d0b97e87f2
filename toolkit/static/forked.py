"""Forked worker processes that talk to the parent over plain pipes.

The static checker forks its workers after loading everything they share. This module does it
with ``os.fork`` and ``os.pipe`` rather than ``multiprocessing``: importing
``multiprocessing`` and building its ``Pipe`` and shared ``Value`` cost about 30 ms of the
parent's start-up (measured on 2 vCPUs), a few percent of a whole check of torch/nn +
torch/_dynamo. POSIX only: ``spawn`` returns None where ``os.fork`` does not exist.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_ITEM = 4  # bytes per work item (a little-endian unsigned index)
_CHUNK = 4096  # items are written in chunks of at most PIPE_BUF bytes: each write is atomic
_HEADER = 8  # bytes of a message's length prefix


class WorkerDied(RuntimeError):
    """A worker process ended without sending its answer."""


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exactly(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or None at end of file before the first byte."""
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            if got:
                raise WorkerDied("a message was cut short (the other process ended)")
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def send_bytes(fd: int, data: bytes) -> None:
    """One length-prefixed message."""
    head = len(data).to_bytes(_HEADER, "little")
    if len(data) < 65536:
        _write_all(fd, head + data)
    else:  # large: the payload is written without copying it
        _write_all(fd, head)
        _write_all(fd, data)


def recv_bytes(fd: int) -> bytes:
    head = _read_exactly(fd, _HEADER)
    if head is None:
        raise WorkerDied("a worker process ended without answering")
    size = int.from_bytes(head, "little")
    body = _read_exactly(fd, size) if size else b""
    if body is None:
        raise WorkerDied("a worker process ended without answering")
    return body


def send(fd: int, obj: Any) -> None:
    send_bytes(fd, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def recv(fd: int) -> Any:
    return pickle.loads(recv_bytes(fd))


@dataclass
class Worker:
    """The parent's side of one worker: its pid and the two pipe ends the parent keeps."""

    pid: int
    to_child: int  # parent writes, worker reads (fd)
    from_child: int  # worker writes, parent reads (fd)


@dataclass
class Queue:
    """A work queue shared by forked workers: the read end of a pipe of item indices."""

    fd: int

    def take(self) -> int | None:
        """The next item, or None when every item has been taken."""
        b = _read_exactly(self.fd, _ITEM)
        return None if b is None else int.from_bytes(b, "little")


def spawn(
    n: int, target: Callable[[int, int, int, Queue], None]
) -> tuple[list[Worker], int] | None:
    """Fork ``n`` workers; worker ``i`` runs ``target(i, read_fd, write_fd, queue)`` and then
    exits without tearing anything down (``os._exit``). Returns the workers and the write end of
    the work queue (see :func:`feed`), or None where ``fork`` is unavailable or fails."""
    if not hasattr(os, "fork"):
        return None
    qr, qw = os.pipe()
    pipes = [(os.pipe(), os.pipe()) for _ in range(n)]  # ((down_r, down_w), (up_r, up_w))
    workers: list[Worker] = []
    try:
        for i in range(n):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 0
                try:
                    (down_r, down_w), (up_r, up_w) = pipes[i]
                    keep = {down_r, up_w, qr}
                    for (a, b), (c, d) in pipes:
                        for fd in (a, b, c, d):
                            if fd not in keep:
                                os.close(fd)
                    os.close(qw)
                    target(i, down_r, up_w, Queue(qr))
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            workers.append(Worker(pid, pipes[i][0][1], pipes[i][1][0]))
    except OSError:
        kill(workers)
        for (a, b), (c, d) in pipes:
            for fd in (a, b, c, d):
                os.close(fd)
        os.close(qr)
        os.close(qw)
        return None
    for (down_r, _dw), (_ur, up_w) in pipes:
        os.close(down_r)
        os.close(up_w)
    os.close(qr)
    return workers, qw


def feed(qw: int, items: Sequence[int]) -> None:
    """Write every item to the work queue and close it (the workers see the end of the queue
    once they have taken everything). Blocks while the pipe is full, that is while the workers
    have more than 64 KiB of items still to take."""
    data = b"".join(i.to_bytes(_ITEM, "little") for i in items)
    try:
        for k in range(0, len(data), _CHUNK):
            _write_all(qw, data[k : k + _CHUNK])
    finally:
        os.close(qw)


def kill(workers: Sequence[Worker]) -> None:
    for w in workers:
        try:
            os.kill(w.pid, signal.SIGKILL)
        except OSError:
            pass


def reap(workers: Sequence[Worker]) -> None:
    """Close the parent's pipe ends and wait for the workers to exit."""
    for w in workers:
        for fd in (w.to_child, w.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.waitpid(w.pid, 0)
        except ChildProcessError:
            pass
