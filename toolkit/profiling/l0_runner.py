"""CLI: ``python -m toolkit.profiling.l0_runner``: L1 runtime validation of a training setup.

The validator lives in :mod:`toolkit.profiling.validator` (entry point
:func:`toolkit.profiling.validator.runner.main`); this module only runs its CLI.
"""

from toolkit.cli import run
from toolkit.profiling.validator.runner import PROG, main

if __name__ == "__main__":
    run(main, PROG)
