"""Watchdog for one training run: supervise, classify every exit, restart transient faults
from the latest complete checkpoint, stop and report the rest. It never edits code or
hyperparameters and never deletes a file. See ``python -m toolkit.watchdog --help``."""
