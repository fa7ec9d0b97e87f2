"""CLI: ``python -m toolkit.profiling.dcgm_profiler``: DCGM profiling metrics (dcgmi dmon): sample or parse.

The instrument lives in :mod:`toolkit.profiling.instruments.dcgm_profiler`; this module only runs its CLI.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.dcgm_profiler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
