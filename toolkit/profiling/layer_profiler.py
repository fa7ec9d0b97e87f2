"""CLI: ``python -m toolkit.profiling.layer_profiler``: per-module forward/backward time of a TrainSpec.

The instrument lives in :mod:`toolkit.profiling.instruments.layer_profiler`; this module only runs its CLI.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.layer_profiler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
