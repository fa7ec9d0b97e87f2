"""Memory profiler: peak memory of a training window, and fragmentation at the peak.

On CUDA it reads the caching allocator (``torch.cuda.memory_stats``): peak allocated / reserved /
active bytes, allocation retries and OOMs during the window, and ``inactive_split_bytes`` (memory
reserved but unusable because blocks were split) sampled *at the end of each forward pass*, where
activations peak, rather than afterwards, when backward has freed them. Optionally it records the
allocator's memory history and dumps a snapshot for https://pytorch.org/memory_viz.

On CPU there is no allocator to ask: it reports the process's resident set size (RSS) peak, sampled
from ``/proc/self/statm`` every ``rss_interval_ms`` and at the end of each forward, and says so. RSS
counts everything in the process (Python, libraries, data), not only tensors.

    python -m toolkit.profiling.memory_profiler run [--entry MODULE:FUNCTION] [--steps N]
        [--estimate-gib G] [--history-snapshot OUT.pickle] [--format table|json]
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from toolkit import cli
from toolkit.errors import InputError
from toolkit.profiling.spec import add_entry_arguments, batch_source, load_from_args

GIB = 1024**3
PROG = "python -m toolkit.profiling.memory_profiler"


@dataclass
class MemoryResult:
    """Memory of one measured window. Every size is in bytes; ``None`` means not measured."""

    device: str
    method: str  # "cuda caching allocator" or "process RSS (/proc/self/statm)"
    peak_allocated_bytes: int | None = None  # CUDA: tensors alive at the peak
    peak_reserved_bytes: int | None = None  # CUDA: held by the caching allocator at its peak
    peak_active_bytes: int | None = None  # CUDA: active blocks incl. rounding
    inactive_split_bytes_at_peak: int | None = (
        None  # CUDA: at the end-of-forward sample with most allocated
    )
    fragmentation_at_peak: float | None = None  # inactive_split / reserved at that sample, 0..1
    num_alloc_retries: int | None = (
        None  # CUDA: cudaMalloc failures that forced a cache flush, in window
    )
    num_ooms: int | None = None  # CUDA: out-of-memory errors raised in window
    rss_start_bytes: int | None = None  # CPU
    rss_peak_bytes: int | None = None  # CPU: highest sampled RSS in the window
    forward_samples: int = 0  # end-of-forward samples taken
    estimate_bytes: int | None = None  # planning estimate to compare against
    measured_over_estimate: float | None = (
        None  # peak (allocated on CUDA, RSS growth on CPU) / estimate
    )
    snapshot_path: str | None = None
    notes: list[str] = field(default_factory=list)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryProfiler:
    """``start()`` before the window, ``stop() -> MemoryResult`` after it.

    ``model``: the root module whose forward end is sampled (optional). ``estimate_bytes``: a
    planning estimate for the per-device peak. ``history_snapshot``: CUDA only; a pickle path for
    the allocator's memory-history snapshot.
    """

    def __init__(
        self,
        device: torch.device,
        model: nn.Module | None = None,
        estimate_bytes: int | None = None,
        history_snapshot: Path | None = None,
        rss_interval_ms: float = 20.0,
    ) -> None:
        self.device, self.model = device, model
        self.result = MemoryResult(device=str(device), method="", estimate_bytes=estimate_bytes)
        self.history_snapshot = history_snapshot
        self.rss_interval_s = rss_interval_ms / 1e3
        self._hook = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base: dict[str, int] = {}
        self._best_alloc = -1
        self._rss_peak = 0

    # --------------------------------------------------------------- sampling
    def _on_forward_end(self, module: nn.Module, args: object, output: object) -> None:
        self.result.forward_samples += 1
        if self.device.type == "cuda":
            s = torch.cuda.memory_stats(self.device)
            alloc = s.get("allocated_bytes.all.current", 0)
            if alloc >= self._best_alloc:  # ties: the latest, where fragmentation has built up
                self._best_alloc = alloc
                inactive = s.get("inactive_split_bytes.all.current", 0)
                reserved = s.get("reserved_bytes.all.current", 0)
                self.result.inactive_split_bytes_at_peak = inactive
                self.result.fragmentation_at_peak = inactive / reserved if reserved else None
        else:
            self._sample_rss()

    def _sample_rss(self) -> None:
        rss = _rss_bytes()
        if rss is not None and rss > self._rss_peak:
            self._rss_peak = rss

    def _rss_loop(self) -> None:
        while not self._stop.wait(self.rss_interval_s):
            self._sample_rss()

    # --------------------------------------------------------------- window
    def start(self) -> MemoryProfiler:
        if self.model is not None:
            self._hook = self.model.register_forward_hook(self._on_forward_end)
        if self.device.type == "cuda":
            self.result.method = "cuda caching allocator (torch.cuda.memory_stats)"
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = dict(torch.cuda.memory_stats(self.device))
            if self.history_snapshot is not None:
                torch.cuda.memory._record_memory_history(max_entries=100_000, device=self.device)
        else:
            self.result.method = (
                "process RSS (/proc/self/statm): the whole process, not only tensors"
            )
            if self.history_snapshot is not None:
                self.result.notes.append("memory-history snapshot: not recorded (CUDA only)")
            start = _rss_bytes()
            if start is None:
                self.result.notes.append(
                    "RSS unavailable: /proc/self/statm not readable on this OS"
                )
            else:
                self.result.rss_start_bytes = self._rss_peak = start
                self._thread = threading.Thread(
                    target=self._rss_loop, name="labcoat-rss", daemon=True
                )
                self._thread.start()
        return self

    def stop(self) -> MemoryResult:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        r = self.result
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            s = torch.cuda.memory_stats(self.device)
            r.peak_allocated_bytes = s.get("allocated_bytes.all.peak")
            r.peak_reserved_bytes = s.get("reserved_bytes.all.peak")
            r.peak_active_bytes = s.get("active_bytes.all.peak")
            r.num_alloc_retries = s.get("num_alloc_retries", 0) - self._base.get(
                "num_alloc_retries", 0
            )
            r.num_ooms = s.get("num_ooms", 0) - self._base.get("num_ooms", 0)
            if self.history_snapshot is not None:
                torch.cuda.memory._dump_snapshot(str(self.history_snapshot))
                torch.cuda.memory._record_memory_history(enabled=None, device=self.device)
                r.snapshot_path = str(self.history_snapshot)
            if r.forward_samples == 0:
                r.notes.append(
                    "fragmentation at peak: not measured (no model forward was observed)"
                )
            measured = r.peak_allocated_bytes
        else:
            if self._thread is not None:
                self._stop.set()
                self._thread.join()
                self._thread = None
                self._sample_rss()
                r.rss_peak_bytes = self._rss_peak
            measured = (
                r.rss_peak_bytes - r.rss_start_bytes
                if r.rss_peak_bytes is not None and r.rss_start_bytes is not None
                else None
            )
            r.notes.append(
                "allocator peaks and fragmentation: not measured on CPU (no caching allocator)"
            )
        if r.estimate_bytes and measured is not None:
            r.measured_over_estimate = measured / r.estimate_bytes
        return r

    def __enter__(self) -> MemoryProfiler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def render(r: MemoryResult) -> str:
    def gib(v: int | None) -> str:
        return "not measured" if v is None else f"{v / GIB:.3f} GiB ({v:,} B)"

    rows: list[tuple[str, str]] = [("device", r.device), ("method", r.method)]
    if r.device.startswith("cuda"):
        rows += [
            ("peak allocated", gib(r.peak_allocated_bytes)),
            ("peak reserved", gib(r.peak_reserved_bytes)),
            ("peak active", gib(r.peak_active_bytes)),
            ("inactive split at peak", gib(r.inactive_split_bytes_at_peak)),
            (
                "fragmentation at peak",
                "not measured"
                if r.fragmentation_at_peak is None
                else f"{r.fragmentation_at_peak:.1%}",
            ),
            ("alloc retries / OOMs", f"{r.num_alloc_retries} / {r.num_ooms}"),
        ]
    else:
        rows += [("RSS at start", gib(r.rss_start_bytes)), ("RSS peak", gib(r.rss_peak_bytes))]
    if r.estimate_bytes is not None:
        ratio = (
            "not measured"
            if r.measured_over_estimate is None
            else f"{r.measured_over_estimate:.2f}x"
        )
        rows.append(
            ("vs estimate", f"{gib(r.estimate_bytes)} estimated; measured/estimate {ratio}")
        )
    if r.snapshot_path:
        rows.append(
            ("history snapshot", f"{r.snapshot_path} (open at https://pytorch.org/memory_viz)")
        )
    out = cli.render_table(("memory", "value"), rows)
    return out + "".join(f"\nnote: {n}" for n in r.notes)


def build_parser() -> cli.Parser:
    p = cli.Parser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 ok, 1 failed run, 2 usage error",
    )
    sub = p.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="train a few steps of an --entry spec and report its memory")
    add_entry_arguments(run)
    run.add_argument(
        "--steps",
        metavar="N",
        type=cli.positive_int("--steps"),
        default=10,
        help="training steps measured (default: 10)",
    )
    run.add_argument(
        "--estimate-gib",
        metavar="GIB",
        type=cli.positive_float("--estimate-gib"),
        help="planning estimate of the per-device peak, GiB, to compare with the measurement",
    )
    run.add_argument(
        "--history-snapshot",
        metavar="PATH",
        type=Path,
        help="CUDA: record allocator history and dump a snapshot pickle here (must not exist)",
    )
    cli.add_format_flag(run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from toolkit.profiling.validator.runtime import model_device, train

    args = build_parser().parse_args(argv)
    if args.history_snapshot is not None and args.history_snapshot.exists():
        raise InputError(
            f"--history-snapshot {args.history_snapshot}: already exists; it will not be overwritten"
        )
    spec = load_from_args(args)
    estimate = int(args.estimate_gib * GIB) if args.estimate_gib else None
    dev = model_device(spec)
    prof = MemoryProfiler(dev, spec.model, estimate, args.history_snapshot).start()
    t0 = time.perf_counter()
    try:
        deadline = time.perf_counter() + 3600.0
        tr = train(spec, batch_source(spec), args.steps, deadline=deadline, warmup_steps=0)
    finally:
        result = prof.stop()
    result.notes.append(
        f"{tr.steps} training step(s) in {time.perf_counter() - t0:.2f} s; stopped: {tr.stop_reason}"
    )
    if args.format == "json":
        cli.print_json(result)
    else:
        print(render(result))
    return cli.EXIT_FAILED if tr.error is not None else cli.EXIT_OK
