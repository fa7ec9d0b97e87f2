"""Error types shared by every toolkit module.

Library code raises these; :mod:`toolkit.cli` turns them into a one-line message and an
exit code, so a user mistake never ends in a traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: a missing file, a malformed field, an unknown name.

    The message must name the file, field or flag and say what was expected.
    CLI exit code 2.
    """


class UnavailableError(Exception):
    """An instrument could not run here (no NVML, no dcgmi, no GPU).

    Callers that can carry on report "<instrument> unavailable: <reason>" instead of a number.
    """
