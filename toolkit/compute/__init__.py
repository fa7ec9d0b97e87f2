"""FLOPs, MFU/HFU, memory and time arithmetic. CLI: ``python -m toolkit.compute``."""
