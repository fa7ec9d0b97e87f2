"""Bottleneck analysis of an L1 runtime report: ``python -m toolkit.profiling.gap_analyzer``.

This module is the CLI only; the instrument lives in :mod:`toolkit.profiling.instruments.gap_analyzer`.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.gap_analyzer import PROG, main

if __name__ == "__main__":
    run(main, PROG)
