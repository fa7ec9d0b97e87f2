"""CLI: ``python -m toolkit.profiling.nvml_sampler``: GPU utilization, clocks, power and temperature sampled with NVML.

The instrument lives in :mod:`toolkit.profiling.instruments.nvml_sampler`; this module only runs its CLI.
"""

from toolkit.cli import run
from toolkit.profiling.instruments.nvml_sampler import PROG, main

if __name__ == "__main__":
    run(main, PROG)
