"""Peak memory, fragmentation and OOM snapshots of a TrainSpec: ``python -m toolkit.profiling.memory_profiler``.

This module is the CLI only; the instrument lives in :mod:`toolkit.profiling.instruments.memory_profiler`.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.memory_profiler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
