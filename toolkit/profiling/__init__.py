"""Profiling and runtime validation (L1).

Layout:

- ``validator/``: the L1 runtime validator: training a bounded run from a TrainSpec (``--entry``)
  or observing an unmodified script (``--script``), the statistics and checks, the report.
- ``instruments/``: GPU and model instruments the validator and the CLIs share: NVML and DCGM
  samplers, the memory and per-layer profilers, the bottleneck (gap) analysis.
- ``spec.py``: the TrainSpec contract between user code and both of the above.
- the other top-level modules are CLIs only (``python -m toolkit.profiling.l0_runner``,
  ``.nvml_sampler``, ``.dcgm_profiler``, ``.memory_profiler``, ``.layer_profiler``,
  ``.gap_analyzer``, ``.mfu_calculator``).
"""
