"""Profiling and runtime validation (L1). Entry point: ``python -m toolkit.profiling.l0_runner``."""
