"""Overhead of the profilers on the built-in example's step time.

    python bench/profiler_overhead.py [--repeats 5] [--steps 60] [--out bench/results/profiler_overhead.json]

Layer profiler: ``profile_layers`` itself interleaves rounds of plain and hooked steps and compares
medians; this runs it ``--repeats`` times. Memory profiler (CPU: an RSS sampling thread every 20 ms
plus an end-of-forward hook): interleaved rounds of plain and profiled steps, medians compared.
Prints a table and writes JSON. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from toolkit.demo.train import build_spec
from toolkit.profiling.layer_profiler import TrainingStep, profile_layers
from toolkit.profiling.memory_profiler import MemoryProfiler
from toolkit.profiling.spec import batch_source

ROOT = Path(__file__).resolve().parents[1]


def memory_overhead(
    step: TrainingStep, model: torch.nn.Module, steps: int, rounds: int = 4
) -> dict:
    plain, profiled = [], []
    per_round = max(1, steps // rounds)

    def timed(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    for _ in range(rounds):
        plain += timed(per_round)
        prof = MemoryProfiler(torch.device("cpu"), model).start()
        profiled += timed(per_round)
        prof.stop()
    a, b = statistics.median(plain), statistics.median(profiled)
    return {"median_step_ms_plain": a, "median_step_ms_profiled": b, "overhead": (b - a) / a}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/profiler_overhead.json")
    args = ap.parse_args()
    spec = build_spec(torch.device("cpu"))
    step = TrainingStep(spec, batch_source(spec))
    layer_runs = []
    for _ in range(args.repeats):
        p = profile_layers(spec.model, step, steps=args.steps, warmup_steps=5)
        layer_runs.append({
            "median_step_ms_plain": p.step_ms_without_hooks, "step_ms_hooked": p.step_ms, "overhead": p.overhead,
            "model_fwd_bwd_over_phases": (p.model_forward_ms + p.model_backward_ms)
            / (p.phases_ms["forward"] + p.phases_ms["backward"]),
        })  # fmt: skip
    mem_runs = [memory_overhead(step, spec.model, args.steps) for _ in range(args.repeats)]
    lo = [r["overhead"] for r in layer_runs]
    mo = [r["overhead"] for r in mem_runs]
    cover = [r["model_fwd_bwd_over_phases"] for r in layer_runs]
    print(f"profiler overhead on the built-in example, {args.repeats} repeats x {args.steps} steps, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}")  # fmt: skip
    print(f"{'instrument':<34}{'median':>10}{'min':>10}{'max':>10}")
    for label, xs in (("layer profiler overhead", lo), ("memory profiler (RSS) overhead", mo)):
        print(f"{label:<34}{statistics.median(xs):>+10.1%}{min(xs):>+10.1%}{max(xs):>+10.1%}")
    print(
        f"{'layers fwd+bwd / timed fwd+bwd':<34}{statistics.median(cover):>10.3f}{min(cover):>10.3f}{max(cover):>10.3f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "profiler overhead, built-in example",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "layer_profiler": layer_runs, "memory_profiler": mem_runs,
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
