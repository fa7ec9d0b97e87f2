"""Which toolkit commands the MCP server offers, and each one's schema, description and command.

The table below says only *which* verbs are tools and how each behaves under MCP (read-only,
long-running, fields left out); every flag, type, default and help text comes from the command's
own ``build_parser()`` through :mod:`toolkit.mcp.schema`.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from toolkit.mcp import schema


@dataclass(frozen=True)
class Verb:
    """One toolkit command exposed as a tool."""

    name: str  # tool name
    module: str  # run as ``python -m <module> <path...>``
    path: tuple[str, ...]  # sub-command words
    parser: str  # "module:function" returning the CLI's parser (imported lazily, torch-free)
    read_only: bool = True  # changes nothing outside what it reports (annotations.readOnlyHint)
    long: bool = False  # minutes of work: progress notifications matter
    omit: tuple[str, ...] = ()  # flags that make no sense for a tool call (e.g. --follow)
    image_field: str | None = None  # a PNG the command writes there comes back as image content

    @property
    def command(self) -> str:
        return " ".join(["python -m", self.module, *self.path])


def _verbs(area: str, module: str, parser: str, names: dict[str, tuple[str, ...]], **kw: Any):
    return [Verb(f"{area}_{n}", module, p, parser, **kw) for n, p in names.items()]


_COMPUTE = "toolkit.compute.__main__:build_parser"
_HARDWARE = "toolkit.hardware.__main__:build_parser"
_LOGS = "toolkit.logs.__main__:build_parser"
_PLAN = "toolkit.plan.__main__:build_parser"
_RUNS = "toolkit.runs.__main__:build_parser"
_LOOPS = "toolkit.loops.__main__:build_parser"

VERBS: list[Verb] = [
    Verb("static_check", "toolkit.static.check", (), "toolkit.static.check:build_parser"),
    Verb("static_rules", "toolkit.static.rules", (), "toolkit.static.rules.__main__:build_parser"),
    Verb(
        "runtime_validate",
        "toolkit.profiling.l0_runner",
        (),
        "toolkit.profiling.l0_args:build_parser",
        read_only=False,  # runs the user's training code
        long=True,
    ),
    Verb(
        "mfu",
        "toolkit.profiling.mfu_calculator",
        (),
        "toolkit.profiling.mfu_calculator:build_parser",
    ),
    *_verbs(
        "compute",
        "toolkit.compute",
        _COMPUTE,
        {
            "memory": ("memory",),
            "kv_cache": ("kv-cache",),
            "time": ("time",),
            "chinchilla": ("chinchilla",),
        },
    ),
    *_verbs(
        "hardware",
        "toolkit.hardware",
        _HARDWARE,
        {"specs": ("specs",), "detect": ("detect",), "launch": ("launch",)},
    ),
    Verb("hardware_free_gpus", "toolkit.hardware", ("free-gpus",), _HARDWARE, long=True),
    Verb(
        "logs_analyze",
        "toolkit.logs",
        ("analyze",),
        _LOGS,
        read_only=False,  # --plot writes the PNG asked for
        image_field="plot",
    ),
    *_verbs("logs", "toolkit.logs", _LOGS, {"compare": ("compare",), "summary": ("summary",)}),
    Verb("logs_postrun", "toolkit.logs", ("postrun",), _LOGS, read_only=False, image_field="plot"),
    *_verbs("plan", "toolkit.plan", _PLAN, {"lint": ("lint",), "rules": ("rules",)}),
    *_verbs("runs", "toolkit.runs", _RUNS, {"list": ("run", "list"), "show": ("run", "show")}),
    Verb("runs_logs", "toolkit.runs", ("run", "logs"), _RUNS, omit=("follow",)),
    *_verbs(
        "runs",
        "toolkit.runs",
        _RUNS,
        {"create": ("run", "create"), "start": ("run", "start"), "cancel": ("run", "cancel")},
        read_only=False,
        long=True,
    ),
    *_verbs("sweep", "toolkit.runs", _RUNS, {"list": ("sweep", "list"), "show": ("sweep", "show")}),
    *_verbs(
        "sweep",
        "toolkit.runs",
        _RUNS,
        {"grid": ("sweep", "grid"), "start": ("sweep", "start")},
        read_only=False,
        long=True,
    ),
    Verb(
        "runs_preflight",
        "toolkit.runs.preflight",
        (),
        "toolkit.runs.preflight:build_parser",
        read_only=False,  # --confirm records the confirmation
    ),
    Verb(
        "watchdog_status", "toolkit.watchdog", ("status",), "toolkit.watchdog.__main__:build_parser"
    ),
    *_verbs(
        "autoresearch",
        "toolkit.loops",
        _LOOPS,
        {"status": ("autoresearch", "status"), "brief": ("autoresearch", "brief")},
        read_only=False,  # each first recovers (finishes or rolls back) an interrupted round
    ),
    Verb("autoresearch_validate", "toolkit.loops", ("autoresearch", "validate"), _LOOPS),
    Verb(
        "autoresearch_judge",
        "toolkit.loops",
        ("autoresearch", "judge"),
        _LOOPS,
        read_only=False,  # trains, then commits or rolls back
        long=True,
    ),
    Verb(
        "iterate_run",
        "toolkit.loops",
        ("iterate", "run"),
        _LOOPS,
        read_only=False,  # runs the round's commands, then commits or rolls back
        long=True,
    ),
    Verb(
        "iterate_judge",
        "toolkit.loops",
        ("iterate", "judge"),
        _LOOPS,
        read_only=False,  # commits or rolls back
    ),
]


def _load(ref: str) -> argparse.ArgumentParser:
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)()


def _help_of(parent: argparse.ArgumentParser, word: str) -> str:
    for action in parent._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == word and choice.help:
                    return choice.help
    return ""


@dataclass
class Tool:
    """A verb with its leaf parser loaded: the schema, argv translation and description."""

    verb: Verb
    parser: argparse.ArgumentParser
    summary: str
    fields: list[schema.Field] = field(default_factory=list)

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        return schema.input_schema(self.parser, self.verb.omit)

    @property
    def description(self) -> str:
        lines = [self.summary.strip(), "", f"Runs: {self.verb.command} ... --format json"]
        lines.append("Result: that command's JSON output, unchanged, as structured content.")
        if self.verb.long:
            lines.append("Can take minutes: reports progress; cancelling the call stops it.")
        if self.verb.image_field:
            lines.append(f"With {self.verb.image_field}: the PNG also comes back as an image.")
        return "\n".join(lines)

    def argv(self, arguments: dict[str, Any]) -> list[str]:
        """The CLI argv (after ``python -m module``) for ``arguments``, checked by the CLI's own
        parser; raises :class:`schema.ArgumentProblem` naming the field."""
        args = ["--format=json", *schema.to_argv(self.fields, arguments)]
        schema.check(self.parser, self.fields, args)
        return [*self.verb.path, *args]


def load(verb: Verb) -> Tool:
    root = _load(verb.parser)
    leaf = schema.subparser(root, verb.path)
    summary = leaf.description or ""
    if verb.path:
        parent = schema.subparser(root, verb.path[:-1])
        summary = _help_of(parent, verb.path[-1]) + ("\n\n" + summary if summary else "")
    return Tool(verb, leaf, summary, schema.fields(leaf, verb.omit))


def load_all() -> dict[str, Tool]:
    """Every tool by name (imports each command's parser module: about 0.5 s, no torch)."""
    return {v.name: load(v) for v in VERBS}
