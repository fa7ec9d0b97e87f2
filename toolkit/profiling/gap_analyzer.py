"""CLI: ``python -m toolkit.profiling.gap_analyzer``: bottleneck analysis of an L1 runtime report.

The instrument lives in :mod:`toolkit.profiling.instruments.gap_analyzer`; this module only runs its CLI.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.gap_analyzer import PROG, main

if __name__ == "__main__":
    run(main, PROG)
