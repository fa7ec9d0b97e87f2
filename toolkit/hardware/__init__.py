"""GPU spec data (one source of truth), environment detection. CLI: ``python -m toolkit.hardware``."""
