"""The L1 runtime validator behind ``python -m toolkit.profiling.l0_runner``."""
