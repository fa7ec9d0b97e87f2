"""GPU utilization, clocks, power and temperature sampled with NVML: ``python -m toolkit.profiling.nvml_sampler``.

This module is the CLI only; the instrument lives in :mod:`toolkit.profiling.instruments.nvml_sampler`.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.nvml_sampler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
