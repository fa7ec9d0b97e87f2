"""Time the L0 static analyzer, ``ruff check --select ALL`` and TorchFix on the same trees.

    .venv/bin/python bench/static_speed.py [TREE ...] [--jobs 1] [--repeat 1] [--no-torchfix]

TREE defaults to the installed ``torch`` package; several trees are checked in one run of each
tool (the issue's yardstick is ``torch/nn torch/_dynamo``). Each tool runs as a subprocess over
the same ``*.py`` files; wall clock and CPU seconds (user + system, children included) are
printed: labcoat forks one process per CPU from 48 files up, ruff uses its own threads, TorchFix
runs with ``-j 1``. With ``--repeat N`` labcoat and ruff take turns N times (both see the same
machine load); the fastest run of each counts, and the median of the run-by-run ratios is printed
beside it. TorchFix is optional (``pip install torchfix``).

labcoat's own modules are byte-compiled first (``compileall``), as ``pip install`` leaves them:
where ``PYTHONDONTWRITEBYTECODE`` is set (this sandbox sets it) a changed module would
otherwise be compiled from source on every timed run, about 30 ms that no installed copy pays.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def count_files(tree: Path) -> int:
    return sum(1 for p in tree.rglob("*.py") if "__pycache__" not in p.parts)


def run_once(cmd: list[str]) -> tuple[float, int, float]:
    """Wall seconds, exit code, CPU seconds (children's user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, proc.returncode, cpu


def timed(cmd: list[str], repeat: int) -> tuple[float, int, float]:
    """Best wall seconds, exit code, CPU seconds of that run."""
    runs = [run_once(cmd) for _ in range(repeat)]
    best = min(runs)
    return best[0], runs[-1][1], best[2]


def alternated(
    cmds: dict[str, list[str]], repeat: int
) -> dict[str, list[tuple[float, int, float]]]:
    """Each command ``repeat`` times, taking turns, so that all see the same machine load."""
    out: dict[str, list[tuple[float, int, float]]] = {k: [] for k in cmds}
    for _ in range(repeat):
        for k, cmd in cmds.items():
            out[k].append(run_once(cmd))
    return out


def main() -> int:
    import torch

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("trees", nargs="*", type=Path, default=[Path(torch.__file__).parent])
    p.add_argument("--jobs", type=int, default=1, help="TorchFix worker processes (default 1)")
    p.add_argument(
        "--repeat", type=int, default=1, help="runs per tool, taking turns; the fastest counts"
    )
    p.add_argument("--no-torchfix", action="store_true", help="skip TorchFix (minutes per tree)")
    args = p.parse_args()
    trees = [str(t) for t in args.trees]
    import toolkit

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    compileall.compile_dir(Path(toolkit.__file__).parent, quiet=1)
    n = sum(count_files(Path(t)) for t in trees)
    print(f"trees: {' '.join(trees)} ({n} .py files)")
    ours = [sys.executable, "-m", "toolkit.static.check", *trees, "--format", "json", "--no-config"]
    cmds = {"labcoat static": ours}
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff:
        cmds["ruff ALL"] = [ruff, "check", "--select", "ALL", "--no-cache", "-q", *trees]
    runs = alternated(cmds, args.repeat)
    for name, rs in runs.items():
        best = min(rs)
        med = statistics.median(r[0] for r in rs)
        print(
            f"{name:15s}: {best[0]:8.2f} s wall (median {med:.2f}) {best[2]:8.2f} s cpu"
            f"  {n / best[0]:8.1f} files/s  (exit {rs[-1][1]})"
        )
    t_ours = min(runs["labcoat static"])[0]
    c_ours = min(runs["labcoat static"])[2]
    if ruff:
        r_best, r_runs = min(runs["ruff ALL"]), runs["ruff ALL"]
        med = statistics.median(
            a[0] / b[0] for a, b in zip(runs["labcoat static"], r_runs, strict=True)
        )
        print(
            f"labcoat / ruff : {t_ours / r_best[0]:.2f}x wall (best/best; median of run pairs"
            f" {med:.2f}x), {c_ours / r_best[2]:.2f}x cpu"
        )
    tf = shutil.which("torchfix", path=str(Path(sys.executable).parent)) or shutil.which("torchfix")
    if tf is None or args.no_torchfix:
        print("torchfix       : not measured (not installed or --no-torchfix)")
        return 0
    t_tf, rc, c_tf = timed([tf, "-j", str(args.jobs), "--select", "ALL", *trees], args.repeat)
    print(f"torchfix -j {args.jobs:<2} : {t_tf:8.2f} s wall {c_tf:8.2f} s cpu  (exit {rc})")
    print(f"speed-up       : {t_tf / t_ours:.1f}x wall, {c_tf / c_ours:.1f}x cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
