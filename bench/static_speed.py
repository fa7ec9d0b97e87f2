"""Time the L0 static analyzer, ``ruff check --select ALL`` and TorchFix on the same trees.

    .venv/bin/python bench/static_speed.py [TREE ...] [--jobs 1] [--repeat 1] [--no-torchfix]

TREE defaults to the installed ``torch`` package; several trees are checked in one run of each
tool (the issue's yardstick is ``torch/nn torch/_dynamo``). Each tool runs as a subprocess over
the same ``*.py`` files; wall clock and CPU seconds (user + system, children included) are
printed: labcoat forks one process per CPU from 48 files up, ruff uses its own threads, TorchFix
runs with ``-j 1``. TorchFix is optional (``pip install torchfix``).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def count_files(tree: Path) -> int:
    return sum(1 for p in tree.rglob("*.py") if "__pycache__" not in p.parts)


def timed(cmd: list[str], repeat: int) -> tuple[float, int, float]:
    """Best wall seconds, exit code, CPU seconds of that run (children's user + system)."""
    best, cpu = float("inf"), 0.0
    rc = 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if wall < best:
            best = wall
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rc = proc.returncode
    return best, rc, cpu


def main() -> int:
    import torch

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("trees", nargs="*", type=Path, default=[Path(torch.__file__).parent])
    p.add_argument("--jobs", type=int, default=1, help="TorchFix worker processes (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    p.add_argument("--no-torchfix", action="store_true", help="skip TorchFix (minutes per tree)")
    args = p.parse_args()
    trees = [str(t) for t in args.trees]
    n = sum(count_files(Path(t)) for t in trees)
    print(f"trees: {' '.join(trees)} ({n} .py files)")
    ours = [sys.executable, "-m", "toolkit.static.check", *trees, "--format", "json", "--no-config"]
    t_ours, rc, c_ours = timed(ours, args.repeat)
    print(
        f"labcoat static : {t_ours:8.2f} s wall {c_ours:8.2f} s cpu  {n / t_ours:8.1f} files/s  (exit {rc})"
    )
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff:
        t_r, rc, c_r = timed(
            [ruff, "check", "--select", "ALL", "--no-cache", "-q", *trees], args.repeat
        )
        print(f"ruff ALL       : {t_r:8.2f} s wall {c_r:8.2f} s cpu  (exit {rc})")
        print(f"labcoat / ruff : {t_ours / t_r:.2f}x wall, {c_ours / c_r:.2f}x cpu")
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
