"""Benchmark the main job: wall time of ``python -m toolkit.profiling.l0_runner`` on the built-in
example, and the runner's own overhead (time outside the timed training steps).

    python bench/l0_runner.py [--repeats 3] [--out bench/results/l0_runner.json]

Prints a table and writes JSON. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def one_run() -> dict[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.l0_runner", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    process_s = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(
            f"l0_runner exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    report = json.loads(proc.stdout)
    timing = report["timing"]
    return {
        "process_wall_s": process_s,  # python start -> exit, imports included
        "runner_wall_s": timing["wall_s"],  # inside main(): argument parsing -> report
        "train_steps_s": timing["train_s"],  # sum of timed step durations
        "runner_overhead_s": timing["overhead_s"],  # runner_wall_s - train_steps_s
        "startup_s": process_s - timing["wall_s"],  # interpreter + torch import
        "setup_s": timing["setup_s"],  # entry import + build (model, optimizer, data)
        "flops_count_s": timing["flops_count_s"],
        "grad_stats_s": timing["grad_stats_s"],
        "pipeline_s": timing["pipeline_s"],
        "layers_s": timing["layers_s"],
        "steps": report["training"]["steps"],
        "median_step_ms": report["training"]["times"]["median_ms"],
        "tokens_per_sec": report["performance"]["tokens_per_sec"],
        "verdict": report["verdict"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/l0_runner.json")
    args = ap.parse_args()
    runs = [one_run() for _ in range(args.repeats)]
    keys = [
        "process_wall_s",
        "startup_s",
        "runner_wall_s",
        "train_steps_s",
        "runner_overhead_s",
        "setup_s",
        "flops_count_s",
        "grad_stats_s",
        "pipeline_s",
        "layers_s",
        "median_step_ms",
        "tokens_per_sec",
    ]
    summary = {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in keys
    }
    print(
        f"l0_runner on the built-in example, {args.repeats} runs, {os.cpu_count()} CPUs, torch {torch.__version__}"
    )
    print(f"{'measure':<20}{'median':>12}{'min':>12}{'max':>12}")
    for k in keys:
        s = summary[k]
        print(f"{k:<20}{s['median']:>12.3f}{s['min']:>12.3f}{s['max']:>12.3f}")
    print("verdicts:", [r["verdict"] for r in runs])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "l0_runner built-in example",
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                },
                "runs": runs,
                "summary": summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
