"""Tool input schemas read off the argparse parsers the CLIs use, and tool arguments turned back
into the argv those parsers take.

One source: a flag's name, type, bounds, choices, default and help live once, in the command's
``build_parser()``; this module walks the parser's actions. Numeric ``type=`` callables made by
:mod:`toolkit.cli` carry their JSON Schema (``json_schema``); builtins ``int``/``float`` map to
integer/number; anything else is a string the parser itself checks.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SKIPPED_DESTS = ("help", "format")  # --format is always json under MCP
SUPPORTED = (
    argparse._StoreAction,
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._AppendAction,
)  # what the toolkit's parsers use; another kind fails loudly when the tool table is built


class ArgumentProblem(Exception):
    """A tool argument the parser (or the schema) rejects; the message names the field."""


@dataclass(frozen=True)
class Field:
    """One tool argument: the argparse action behind it and its JSON Schema."""

    name: str  # argparse dest, the JSON property name
    action: argparse.Action
    schema: dict[str, Any]
    required: bool

    @property
    def flag(self) -> str | None:
        """The long option (``--seq-len``); None for a positional."""
        longs = [o for o in self.action.option_strings if o.startswith("--")]
        return longs[0] if longs else (self.action.option_strings or [None])[0]

    @property
    def label(self) -> str:
        return f"{self.name} ({self.flag})" if self.flag else self.name


def subparser(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    """The parser of the sub-command ``path`` (``("run", "list")``); ``()`` is ``parser``."""
    for name in path:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or name not in subs[0].choices:
            raise KeyError(f"{parser.prog}: no sub-command {name!r}")
        parser = subs[0].choices[name]
    return parser


def _type_schema(action: argparse.Action) -> dict[str, Any]:
    if action.choices is not None:
        values = list(action.choices)
        kind = "integer" if all(isinstance(v, int) for v in values) else "string"
        return {"type": kind, "enum": values}
    t = action.type
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    schema = getattr(t, "json_schema", None)
    return dict(schema) if schema else {"type": "string"}


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return parser._get_formatter()._expand_help(action)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def fields(parser: argparse.ArgumentParser, omit: tuple[str, ...] = ()) -> list[Field]:
    """Every argument of a leaf parser except ``--help``, ``--format`` and ``omit``."""
    exclusive: dict[str, list[str]] = {}
    for group in parser._mutually_exclusive_groups:
        names = [a.dest for a in group._group_actions]
        for name in names:
            exclusive[name] = [n for n in names if n != name]
    out = []
    for action in parser._actions:
        if action.dest in SKIPPED_DESTS or action.dest in omit:
            continue
        if isinstance(action, argparse._SubParsersAction):
            raise ValueError(f"{parser.prog}: not a leaf command (has sub-commands)")
        if not isinstance(action, SUPPORTED):
            raise ValueError(
                f"{parser.prog}: {type(action).__name__} ({action.dest}) has no schema"
            )
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            schema: dict[str, Any] = {"type": "boolean", "default": action.default}
        elif isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"):
            schema = {"type": "array", "items": _type_schema(action)}
            if action.nargs == "+":
                schema["minItems"] = 1
        else:
            schema = _type_schema(action)
            if action.default is not None and action.default != argparse.SUPPRESS:
                schema["default"] = _jsonable(action.default)
        text = _help(parser, action)
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        note = f"CLI: {flag}" if flag else "CLI: positional"
        if action.dest in exclusive:
            note += f"; not together with {', '.join(exclusive[action.dest])}"
        schema["description"] = f"{text} ({note})" if text else f"({note})"
        positional = not action.option_strings
        required = bool(action.required) or (positional and action.nargs in (None, "+"))
        out.append(Field(action.dest, action, schema, required))
    return out


def input_schema(parser: argparse.ArgumentParser, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON Schema (an object) of a leaf parser's arguments."""
    fs = fields(parser, omit)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: f.schema for f in fs},
        "additionalProperties": False,
    }
    required = [f.name for f in fs if f.required]
    if required:
        schema["required"] = required
    notes = [
        f"exactly one of {', '.join(a.dest for a in group._group_actions)} is required"
        for group in parser._mutually_exclusive_groups
        if group.required
    ]
    if notes:
        schema["description"] = "; ".join(notes)
    return schema


def _text(value: Any, f: Field) -> str:
    if isinstance(value, bool):
        raise ArgumentProblem(f"{f.label}: expected {f.schema.get('type', 'a value')}, got {value}")
    if isinstance(value, float) and value.is_integer() and f.schema.get("type") == "integer":
        value = int(value)
    if isinstance(value, dict | list):
        raise ArgumentProblem(f"{f.label}: expected a single value, got {type(value).__name__}")
    return str(value)


def to_argv(fs: list[Field], arguments: dict[str, Any]) -> list[str]:
    """CLI arguments for ``arguments`` (JSON values keyed by field name): options as
    ``--flag=value`` (so a value starting with '-' stays a value), then positionals, after '--'
    when one of them starts with '-'. Unknown names raise :class:`ArgumentProblem`."""
    by_name = {f.name: f for f in fs}
    unknown = sorted(set(arguments) - set(by_name))
    if unknown:
        raise ArgumentProblem(
            f"{unknown[0]}: unknown argument; expected one of: {', '.join(sorted(by_name))}"
        )
    options: list[str] = []
    positionals: list[str] = []
    for f in fs:
        if f.name not in arguments or arguments[f.name] is None:
            continue
        value = arguments[f.name]
        if f.schema["type"] == "boolean":
            if not isinstance(value, bool):
                raise ArgumentProblem(f"{f.label}: expected true or false, got {value!r}")
            if value != f.action.default:
                options.append(f.flag)
            continue
        if f.schema["type"] == "array":
            if not isinstance(value, list):
                raise ArgumentProblem(f"{f.label}: expected an array, got {value!r}")
            items = [_text(v, f) for v in value]
        else:
            items = [_text(value, f)]
        if f.flag is None:
            positionals += items
        elif f.flag.startswith("--"):
            options += [f"{f.flag}={item}" for item in items]
        else:  # a short option only: "-n=5" would read "=5"
            options += [token for item in items for token in (f.flag, item)]
    if any(p.startswith("-") for p in positionals):
        positionals.insert(0, "--")
    return options + positionals


_OPTION = re.compile(r"--[A-Za-z0-9][A-Za-z0-9-]*")


def name_fields(message: str, fs: list[Field]) -> str:
    """Prefix a CLI error message with the field names of the flags it mentions
    (``--gpus expects ...`` -> ``gpus: --gpus expects ...``)."""
    by_flag = {f.flag: f.name for f in fs if f.flag}
    names: list[str] = []
    for flag in _OPTION.findall(message):
        if flag in by_flag and by_flag[flag] not in names:
            names.append(by_flag[flag])
    if not names:
        m = re.match(r"argument ([A-Za-z_][\w-]*)", message)  # a positional, by metavar/dest
        dests = {f.name for f in fs}
        if m and m.group(1) in dests:
            names.append(m.group(1))
    return f"{', '.join(names)}: {message}" if names else message


def check(parser: argparse.ArgumentParser, fs: list[Field], argv: list[str]) -> None:
    """Parse ``argv`` with the command's own parser, in-process (its ``type=`` checks, choices,
    required flags and exclusive groups); a rejection raises :class:`ArgumentProblem` naming the
    field. Nothing is run."""

    def fail(message: str) -> None:
        raise ArgumentProblem(name_fields(message, fs))

    saved = parser.error
    parser.error = fail  # type: ignore[method-assign]
    try:
        parser.parse_args(argv)
    finally:
        parser.error = saved  # type: ignore[method-assign]
