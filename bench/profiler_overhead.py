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

from toolkit.demo.model import GPT, GPTConfig
from toolkit.demo.train import build_spec
from toolkit.profiling.instruments.layer_profiler import TrainingStep, profile_layers
from toolkit.profiling.instruments.memory_profiler import MemoryProfiler
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
    n_modules = (
        sum(1 for _ in spec.model.modules()) - 1
    )  # the never-called ModuleList has no hooks firing
    layer_runs = []
    for _ in range(args.repeats):
        p = profile_layers(spec.model, step, steps=args.steps, warmup_steps=5)
        layer_runs.append({
            "median_step_ms_plain": p.step_ms_without_hooks, "step_ms_hooked": p.step_ms, "overhead": p.overhead,
            "us_per_module_per_step": p.overhead * p.step_ms_without_hooks * 1e3 / n_modules,
            "model_fwd_bwd_over_phases": (p.model_forward_ms + p.model_backward_ms)
            / (p.phases_ms["forward"] + p.phases_ms["backward"]),
        })  # fmt: skip
    # the same GPT at a modest size: the hooks' cost per module is fixed, the work per module is not
    torch.manual_seed(0)
    big = GPT(GPTConfig(vocab_size=96, block_size=256, n_layer=4, n_head=8, n_embd=256))
    opt = torch.optim.AdamW(big.parameters(), lr=1e-4)
    x = torch.randint(0, 96, (8, 256))

    def big_step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = big(x)
        torch.nn.functional.cross_entropy(logits.view(-1, 96), x.view(-1)).backward()
        opt.step()

    big_runs = [profile_layers(big, big_step, steps=max(8, args.steps // 4), warmup_steps=2)
                for _ in range(args.repeats)]  # fmt: skip
    bo = [r.overhead for r in big_runs]
    mem_runs = [memory_overhead(step, spec.model, args.steps) for _ in range(args.repeats)]
    lo = [r["overhead"] for r in layer_runs]
    mo = [r["overhead"] for r in mem_runs]
    cover = [r["model_fwd_bwd_over_phases"] for r in layer_runs]
    print(f"profiler overhead on the built-in example, {args.repeats} repeats x {args.steps} steps, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}")  # fmt: skip
    print(f"{'instrument (built-in example unless named)':<34}{'median':>10}{'min':>10}{'max':>10}")
    us = [r["us_per_module_per_step"] for r in layer_runs]
    for label, xs in (
        ("layer profiler overhead", lo),
        ("memory profiler (RSS) overhead", mo),
        ("layer profiler, 4x256 GPT, T=256", bo),
    ):
        print(f"{label:<34}{statistics.median(xs):>+10.1%}{min(xs):>+10.1%}{max(xs):>+10.1%}")
    print(
        f"{'layer hooks, us / module / step':<34}{statistics.median(us):>10.1f}{min(us):>10.1f}{max(us):>10.1f}"
    )
    print(
        f"{'4x256 GPT median step (ms)':<34}{statistics.median(r.step_ms_without_hooks for r in big_runs):>10.1f}"
    )
    print(
        f"{'layers fwd+bwd / timed fwd+bwd':<34}{statistics.median(cover):>10.3f}{min(cover):>10.3f}{max(cover):>10.3f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "profiler overhead, built-in example",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "layer_profiler": layer_runs, "memory_profiler": mem_runs,
        "layer_profiler_4x256_gpt": [{"overhead": r.overhead, "step_ms_plain": r.step_ms_without_hooks} for r in big_runs],
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
