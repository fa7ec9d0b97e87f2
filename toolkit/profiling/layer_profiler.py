"""Per-module forward/backward time of a TrainSpec: ``python -m toolkit.profiling.layer_profiler``.

This module is the CLI only; the instrument lives in :mod:`toolkit.profiling.instruments.layer_profiler`.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.layer_profiler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
