"""L1 runtime validation of a training setup: ``python -m toolkit.profiling.l0_runner``.

This module is the CLI only; the validator lives in :mod:`toolkit.profiling.validator` (entry point
:func:`toolkit.profiling.validator.runner.main`).
"""

from toolkit.cli import run
from toolkit.profiling.l0_args import PROG
from toolkit.profiling.validator.runner import main

if __name__ == "__main__":
    run(main, PROG)
