"""Time the L0 static analyzer and TorchFix on the same tree; print files/s for both.

    .venv/bin/python bench/static_speed.py [TREE] [--jobs 1] [--repeat 1]

TREE defaults to the installed ``torch`` package. Both tools run as subprocesses on one core
(``torchfix -j 1``; labcoat is single-process), over the same ``*.py`` files, wall-clock timed.
TorchFix is optional (``pip install torchfix``); without it only labcoat is timed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path


def count_files(tree: Path) -> int:
    return sum(1 for p in tree.rglob("*.py") if "__pycache__" not in p.parts)


def timed(cmd: list[str], repeat: int) -> tuple[float, int]:
    best = float("inf")
    rc = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
        rc = proc.returncode
    return best, rc


def main() -> int:
    import torch

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("tree", nargs="?", type=Path, default=Path(torch.__file__).parent)
    p.add_argument(
        "--jobs", type=int, default=1, help="TorchFix worker processes (default 1, like labcoat)"
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest counts")
    args = p.parse_args()
    tree = args.tree
    n = count_files(tree)
    print(f"tree: {tree} ({n} .py files)")
    ours_cmd = [
        sys.executable,
        "-m",
        "toolkit.static.check",
        str(tree),
        "--format",
        "json",
        "--no-config",
    ]
    t_ours, rc = timed(ours_cmd, args.repeat)
    print(f"labcoat static : {t_ours:8.2f} s  {n / t_ours:8.1f} files/s  (exit {rc})")
    tf = shutil.which("torchfix", path=str(Path(sys.executable).parent)) or shutil.which("torchfix")
    if tf is None:
        print("torchfix       : not installed (pip install torchfix) - not measured")
        return 0
    t_tf, rc = timed([tf, "-j", str(args.jobs), "--select", "ALL", str(tree)], args.repeat)
    print(f"torchfix -j {args.jobs:<2} : {t_tf:8.2f} s  {n / t_tf:8.1f} files/s  (exit {rc})")
    print(f"speed-up       : {t_tf / t_ours:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
