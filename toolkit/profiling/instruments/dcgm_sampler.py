"""Live ``dcgmi dmon`` in the background: :class:`DcgmSampler` and :func:`sample`.

``dcgmi dmon -e <ids> -d <interval_ms>``: DCGM's ``-d`` is MILLISECONDS (default 1000,
minimum 1). dcgmi stops cleanly on SIGINT (prints "dmon was stopped due to receiving a
signal" and exits 0); SIGTERM makes it exit 143 without the trailer.
"""

from __future__ import annotations

import atexit
import math
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from toolkit.errors import InputError
from toolkit.profiling.instruments.dcgm_dmon import classify_error_line, read_dmon
from toolkit.profiling.instruments.dcgm_fields import DEFAULT_FIELD_IDS
from toolkit.profiling.instruments.dcgm_summary import DcgmResult, summarize, unavailable

DEFAULT_INTERVAL_MS = 100
DEFAULT_SAMPLE_WARMUP_S = 5.0


# ----------------------------------------------------------------------------- live sampling


def dmon_command(
    executable: str,
    field_ids: Sequence[int],
    interval_ms: int,
    gpus: Sequence[int] | None = None,
    count: int | None = None,
) -> list[str]:
    """``dcgmi dmon -e 1001,1002 -d <interval_ms> [-i 0,1] [-c N]``; ``-d`` is milliseconds."""
    command = [executable, "dmon", "-e", ",".join(str(f) for f in field_ids)]
    command += ["-d", str(interval_ms)]
    if gpus:
        command += ["-i", ",".join(str(g) for g in gpus)]
    if count is not None:
        command += ["-c", str(count)]
    return command


class DcgmSampler:
    """Run ``dcgmi dmon`` in the background; :meth:`stop` returns its :class:`DcgmResult`.

    ``start()`` only launches the process (no waiting, never raises because DCGM is
    missing); ``stop()`` sends SIGINT (dcgmi's own clean stop), then SIGTERM, then SIGKILL,
    and is idempotent. Use as a context manager or call ``stop()`` in a ``finally``; a
    sampler left running is killed at interpreter exit.

    ``interval_ms`` is dmon's ``-d`` in milliseconds (integer >= 1); ``gpus`` become ``-i``;
    ``count`` is ``-c`` (ticks before dcgmi exits by itself); ``warmup_s`` drops the ticks
    that arrive in the first seconds after ``start()``; ``stop_grace_s`` is how long
    ``stop()`` waits after SIGINT before SIGTERM (default max(2 s, 3 intervals)).
    """

    def __init__(
        self,
        fields: Sequence[int] = DEFAULT_FIELD_IDS,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        gpus: Sequence[int] | None = None,
        *,
        warmup_s: float = 0.0,
        count: int | None = None,
        executable: str = "dcgmi",
        stop_grace_s: float | None = None,
    ) -> None:
        _check_sampler_args(fields, interval_ms, gpus, warmup_s, count)
        self.stop_grace_s = (
            max(2.0, 3 * interval_ms / 1000.0) if stop_grace_s is None else stop_grace_s
        )
        self.fields = tuple(fields)
        self.interval_ms = int(interval_ms)
        self.gpus = tuple(gpus) if gpus else None
        self.warmup_s = float(warmup_s)
        self.count = count
        self.executable = executable
        self._proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._stdout: list[tuple[float, str]] = []
        self._stderr: list[str] = []
        self._t0 = 0.0
        self._started = False
        self._signalled = False
        self._start_failure: str | None = None
        self._result: DcgmResult | None = None
        self._lock = threading.Lock()

    def command(self, executable: str | None = None) -> list[str]:
        """The dcgmi command line this sampler runs."""
        return dmon_command(
            executable or self.executable, self.fields, self.interval_ms, self.gpus, self.count
        )

    def start(self) -> DcgmSampler:
        """Launch dcgmi (once; later calls do nothing). Returns self."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            self._t0 = time.monotonic()
            path = shutil.which(self.executable)
            if path is None:
                self._start_failure = (
                    f"{self.executable} not found on PATH (install NVIDIA DCGM, package "
                    "datacenter-gpu-manager, and start nv-hostengine)"
                )
                return self
            try:
                self._proc = subprocess.Popen(
                    self.command(path),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    bufsize=1,
                    start_new_session=True,
                )
            except OSError as exc:
                self._start_failure = f"could not run {path}: {exc}"
                return self
            self._readers = [
                _reader(self._proc.stdout, self._on_stdout),
                _reader(self._proc.stderr, self._stderr.append),
            ]
            atexit.register(self._kill_quietly)
            return self

    @property
    def running(self) -> bool:
        """True while dcgmi is running."""
        return self._proc is not None and self._proc.poll() is None

    def early_failure(self) -> str | None:
        """Why sampling cannot work, if already known (dcgmi missing or already exited)."""
        if self._start_failure:
            return self._start_failure
        if self._proc is not None and self._proc.poll() not in (None, 0):
            return f"dcgmi exited with status {self._proc.returncode}"
        return None

    def stop(self, warmup_s: float | None = None) -> DcgmResult:
        """Stop dcgmi and summarize its output. Safe to call more than once.

        ``warmup_s`` overrides the constructor's warm-up, for callers that learn when warm-up
        ended only after the fact (the runtime validator); ignored on later calls.
        """
        with self._lock:
            if self._result is None:
                if warmup_s is not None:
                    _check_sampler_args(
                        self.fields, self.interval_ms, self.gpus, warmup_s, self.count
                    )
                    self.warmup_s = float(warmup_s)
                self._result = self._finish()
            return self._result

    def __enter__(self) -> DcgmSampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals

    def _on_stdout(self, line: str) -> None:
        self._stdout.append((time.monotonic() - self._t0, line))

    def _finish(self) -> DcgmResult:
        command = self.command()
        if not self._started:
            return unavailable("the DCGM sampler was never started", command=command)
        if self._start_failure is not None or self._proc is None:
            return unavailable(self._start_failure or "dcgmi did not start", command=command)
        self._terminate(self._proc)
        for thread in self._readers:
            thread.join(timeout=2.0)
        atexit.unregister(self._kill_quietly)
        return self._summarize(command)

    def _terminate(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is not None:
            return
        self._signalled = True
        for signum, wait_s in ((signal.SIGINT, self.stop_grace_s), (signal.SIGTERM, 2.0)):
            try:
                proc.send_signal(signum)
                proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return
        proc.kill()
        proc.wait()

    def _summarize(self, command: list[str]) -> DcgmResult:
        assert self._proc is not None
        times = [t for t, _ in self._stdout]
        lines = [line.rstrip("\n") for _, line in self._stdout]
        stderr_errors = [
            e for i, line in enumerate(self._stderr) if (e := classify_error_line(line, i + 1))
        ]
        returncode = self._proc.returncode
        try:
            dmon = read_dmon(lines, times)
            result = summarize(
                dmon,
                self.interval_ms,
                self.warmup_s,
                field_ids=self.fields,
                extra_errors=stderr_errors,
                returncode=None if self._signalled else returncode,
                command=command,
            )
        except InputError as exc:
            return unavailable(f"could not read dcgmi output: {exc}", command=command)
        if result.available and not self._signalled and returncode not in (0, None):
            result.warnings.append(f"dcgmi exited by itself with status {returncode}")
        return result

    def _kill_quietly(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()


def _reader(stream: IO[str] | None, sink: Any) -> threading.Thread:
    def pump() -> None:
        if stream is None:
            return
        for line in stream:
            sink(line)

    thread = threading.Thread(target=pump, name="dcgmi-reader", daemon=True)
    thread.start()
    return thread


def _check_sampler_args(
    fields: Sequence[int],
    interval_ms: int,
    gpus: Sequence[int] | None,
    warmup_s: float,
    count: int | None,
) -> None:
    if not fields or any(not isinstance(f, int) or f < 1 for f in fields):
        raise InputError(f"fields must be positive DCGM field ids, got {list(fields)}")
    if not isinstance(interval_ms, int) or interval_ms < 1:
        raise InputError(
            f"interval_ms is dcgmi's -d in whole milliseconds (>= 1), got {interval_ms!r}"
        )
    if gpus is not None and any(not isinstance(g, int) or g < 0 for g in gpus):
        raise InputError(f"gpus must be GPU ids >= 0, got {list(gpus)}")
    if not math.isfinite(warmup_s) or warmup_s < 0:
        raise InputError(f"warmup_s must be >= 0 seconds, got {warmup_s}")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise InputError(f"count must be a positive number of ticks, got {count!r}")


def sample(
    duration_s: float,
    fields: Sequence[int] = DEFAULT_FIELD_IDS,
    interval_ms: int = DEFAULT_INTERVAL_MS,
    gpus: Sequence[int] | None = None,
    *,
    warmup_s: float = DEFAULT_SAMPLE_WARMUP_S,
    count: int | None = None,
) -> DcgmResult:
    """Run dcgmi dmon for ``duration_s`` seconds (less if it exits first) and summarize."""
    with DcgmSampler(fields, interval_ms, gpus, warmup_s=warmup_s, count=count) as sampler:
        deadline = time.monotonic() + duration_s
        while sampler.running and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.05, left))
    return sampler.stop()
