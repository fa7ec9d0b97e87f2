"""DCGM profiling metrics (dcgmi dmon): sample or parse: ``python -m toolkit.profiling.dcgm_profiler``.

This module is the CLI only; the instrument lives in :mod:`toolkit.profiling.instruments.dcgm_profiler`.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.dcgm_profiler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
