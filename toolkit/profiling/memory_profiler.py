"""CLI: ``python -m toolkit.profiling.memory_profiler``: peak memory, fragmentation and OOM snapshots of a TrainSpec.

The instrument lives in :mod:`toolkit.profiling.instruments.memory_profiler`; this module only runs its CLI.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.memory_profiler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
