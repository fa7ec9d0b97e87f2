"""Every command and flag of every toolkit CLI, read from its argparse parser, and an in-process
runner that turns a call into (exit code, stdout, stderr, traceback or None).

Used by tests/test_cli_bad_input.py (the generated bad-input test). The parsers are read by
calling each ``main`` with ``parse_args`` intercepted, so commands that build their parser inside
``main`` are covered too, and a new command or flag is fuzzed without editing a list.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

from toolkit.errors import InputError

#: every toolkit CLI: ``python -m <module>``
MODULES = (
    "toolkit.compute",
    "toolkit.hardware",
    "toolkit.logs",
    "toolkit.loops",
    "toolkit.plan",
    "toolkit.profiling.dcgm_profiler",
    "toolkit.profiling.gap_analyzer",
    "toolkit.profiling.l0_runner",
    "toolkit.profiling.layer_profiler",
    "toolkit.profiling.memory_profiler",
    "toolkit.profiling.mfu_calculator",
    "toolkit.profiling.nvml_sampler",
    "toolkit.runs",
    "toolkit.static.check",
    "toolkit.static.rules",
    "toolkit.watchdog",
)


@dataclass(frozen=True)
class Arg:
    """One argument of one command: how to write it and what it accepts."""

    flag: str | None  # "--backoff", or None for a positional
    dest: str
    kind: str  # number | choice | text
    convert: Callable[[str], object] | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    metavar: str | None = None
    many: bool = False  # nargs + or *: takes several values

    @property
    def name(self) -> str:
        return self.flag or self.metavar or self.dest

    def named_in(self, text: str) -> bool:
        return any(n and n in text for n in (self.flag, self.metavar, self.dest))


@dataclass
class Command:
    module: str
    path: tuple[str, ...]  # sub-command words
    args: list[Arg] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join((self.module, *self.path))


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _main(module: str) -> Callable[[Sequence[str] | None], int]:
    mod = importlib.import_module(module)
    if not hasattr(mod, "main"):
        mod = importlib.import_module(module + ".__main__")
    return mod.main


def parser_of(module: str) -> argparse.ArgumentParser:
    """The parser ``main`` builds, caught at its ``parse_args`` call."""
    real = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = grab  # type: ignore[method-assign]
    try:
        _main(module)([])
    except _Captured as cap:
        return cap.parser
    finally:
        argparse.ArgumentParser.parse_args = real  # type: ignore[method-assign]
    raise AssertionError(f"{module}.main never called parse_args")


def _kind(action: argparse.Action) -> str:
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "choice"
    conv = action.type
    if conv in (int, float):
        return "number"
    if callable(conv) and conv not in (str,):
        for sample in ("1", "0.5", "3"):
            try:
                value = conv(sample)
            except Exception:  # noqa: BLE001 - probing an argparse type
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                return "number"
    return "text"


def _walk(module: str, parser: argparse.ArgumentParser, path: tuple[str, ...], out: list) -> None:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        seen: set[int] = set()
        for name, sub in subs[0].choices.items():
            if id(sub) not in seen:
                seen.add(id(sub))
                _walk(module, sub, (*path, name), out)
        return
    cmd = Command(module, path)
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction | argparse._VersionAction) or a.nargs == 0:
            continue
        flag = max(a.option_strings, key=len) if a.option_strings else None
        cmd.args.append(
            Arg(
                flag,
                a.dest,
                _kind(a),
                a.type if callable(a.type) else None,
                tuple(str(c) for c in a.choices or ()),
                bool(a.required or not a.option_strings),
                a.metavar if isinstance(a.metavar, str) else None,
                a.nargs in ("+", "*"),
            )  # fmt: skip
        )
    out.append(cmd)


@cache
def commands() -> tuple[Command, ...]:
    out: list[Command] = []
    for module in MODULES:
        _walk(module, parser_of(module), (), out)
    return tuple(out)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    traceback: str | None = None


class _Hang(Exception):
    pass


def call(module: str, argv: list[str], timeout_s: int = 20) -> Outcome:
    """``python -m module argv`` in this process, as :func:`toolkit.cli.run` would end it."""
    out, err = io.StringIO(), io.StringIO()

    def alarm(*_):
        raise _Hang(f"no exit after {timeout_s} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _main(module)(argv)
        return Outcome(int(code or 0), out.getvalue(), err.getvalue())
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return Outcome(code, out.getvalue(), err.getvalue())
    except InputError as exc:
        return Outcome(2, out.getvalue(), err.getvalue() + f"error: {exc}\n")
    except BaseException:  # noqa: BLE001 - anything else is a traceback the user would see
        return Outcome(-1, out.getvalue(), err.getvalue(), traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
