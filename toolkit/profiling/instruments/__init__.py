"""GPU and model instruments: NVML/DCGM sampling, memory and per-layer profiles, gap analysis."""
