"""Shared CLI plumbing for every ``python -m toolkit.<area> <verb>`` command.

Conventions (one place, used by every command):

- ``--format table|json``: a readable table for people, JSON for machines.
- Exit codes: :data:`EXIT_OK` 0 ok, :data:`EXIT_FAILED` 1 a check failed or findings were
  reported, :data:`EXIT_USAGE` 2 usage or input error.
- User mistakes (:class:`toolkit.errors.InputError`, argparse errors) print one line on stderr
  naming what is wrong and what was expected; never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from toolkit.errors import InputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """ArgumentParser that exits 2 with a one-line error naming the program and the problem."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def add_format_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--format table|json`` (default: table)."""
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="output format: 'table' for people (default), 'json' for machines",
    )


# ----------------------------------------------------------------------------- argument types


def _number(flag: str, kind: type, expected: str, **bounds: float) -> Callable[[str], Any]:
    """argparse ``type=`` for a finite ``kind`` (int or float) within JSON-Schema ``bounds``
    (``minimum``, ``exclusiveMinimum``, ``maximum``); errors say "<flag> expects <expected>, got
    <text>". The parser function carries ``json_schema`` (type and bounds), which is how
    ``toolkit.mcp`` derives a tool's input schema from the same parser the CLI uses."""

    def ok(value: float) -> bool:
        return (
            value >= bounds.get("minimum", -math.inf)
            and value > bounds.get("exclusiveMinimum", -math.inf)
            and value <= bounds.get("maximum", math.inf)
        )

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} expects {expected}, got {text!r}") from None
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"{flag} expects {expected}, got {text}")
        return value

    parse.json_schema = {"type": "integer" if kind is int else "number", **bounds}  # type: ignore[attr-defined]
    return parse


def positive_float(flag: str) -> Callable[[str], float]:
    """A finite number > 0."""
    return _number(flag, float, "a positive number", exclusiveMinimum=0)


def positive_int(flag: str) -> Callable[[str], int]:
    """An integer >= 1."""
    return _number(flag, int, "a positive integer", minimum=1)


def non_negative_float(flag: str) -> Callable[[str], float]:
    """A finite number >= 0."""
    return _number(flag, float, "a number >= 0", minimum=0)


def non_negative_int(flag: str) -> Callable[[str], int]:
    """An integer >= 0."""
    return _number(flag, int, "an integer >= 0", minimum=0)


def percent(flag: str) -> Callable[[str], float]:
    """A percentage in 0..100."""
    return _number(flag, float, "a percentage 0..100", minimum=0, maximum=100)


def fraction(flag: str) -> Callable[[str], float]:
    """A fraction in (0, 1]."""
    return _number(flag, float, "a fraction in (0, 1]", exclusiveMinimum=0, maximum=1)


def existing_file(flag: str) -> Callable[[str], Path]:
    """argparse ``type=`` for a path that must be an existing file."""

    def parse(text: str) -> Path:
        path = Path(text)
        if not path.is_file():
            what = "a directory" if path.is_dir() else "missing"
            raise argparse.ArgumentTypeError(f"{flag}: {text} is {what}; expected a file")
        return path

    parse.json_schema = {"type": "string", "description": "path to an existing file"}  # type: ignore[attr-defined]
    return parse


def read_text(path: Path | str, what: str) -> str:
    """The UTF-8 text of input file ``path``; an :class:`InputError` naming ``what`` (the flag or
    field) and the path when it is missing, a directory, unreadable, binary or not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path}: is a directory; expected a file") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if b"\0" in raw[:8192]:
        raise InputError(f"{what} {path}: a binary file (NUL bytes); expected text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} {path}: not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})"
        ) from None


# ----------------------------------------------------------------------------- output


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, enums, paths and non-finite floats into plain JSON values.

    NaN and +-Inf become the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the output stays
    strict JSON and a non-finite measurement is still visible.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def print_json(obj: Any, stream: Any = None) -> None:
    """Strict JSON (indent 2) in one write: ``json.dump`` would issue one small write per token,
    seconds for a 10,000-row result."""
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Render rows as a left-aligned text table with a header rule."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_num(value: float | None, digits: int = 3, unit: str = "") -> str:
    """Format a number with ``digits`` significant digits; ``None`` becomes 'not measured'."""
    if value is None:
        return "not measured"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
    return f"{text} {unit}".rstrip()


# ----------------------------------------------------------------------------- progress

PROGRESS_ENV = "LABCOAT_PROGRESS"
PROGRESS_PREFIX = "labcoat-progress: "


def report_progress(message: str, done: float | None = None, total: float | None = None) -> None:
    """Tell a supervising process how far a long command is: one line
    ``labcoat-progress: {"message": ..., "done": ..., "total": ...}`` on stderr, only when the
    environment has ``LABCOAT_PROGRESS=1`` (the MCP server sets it and relays the lines as
    progress notifications); otherwise nothing. ``done``/``total`` are in the caller's unit
    (steps)."""
    if os.environ.get(PROGRESS_ENV) != "1":
        return
    line = json.dumps({"message": message, "done": done, "total": total})
    sys.stderr.write(f"{PROGRESS_PREFIX}{line}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------- entry point


def run(
    main: Callable[[Sequence[str] | None], int], prog: str, argv: Sequence[str] | None = None
) -> None:
    """Run a command's ``main(argv) -> exit code`` and exit with it.

    ``prog`` is the command as the user types it (``"python -m toolkit.hardware"``).
    :class:`InputError` becomes ``<prog>: error: <message>`` on stderr and exit 2; Ctrl-C
    exits 130. Anything else is a bug in labcoat and keeps its traceback.
    """
    try:
        code = main(argv)
    except InputError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        code = EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as CPython advises
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_FAILED
    sys.exit(code)
