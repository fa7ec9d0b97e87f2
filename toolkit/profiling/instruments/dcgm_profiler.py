"""DCGM profiler: tensor-core activity (TCA) and engine activity from ``dcgmi dmon``.

``python -m toolkit.profiling.dcgm_profiler parse FILE`` summarizes a saved ``dcgmi dmon``
capture; ``... sample --duration-s S`` runs ``dcgmi dmon`` live, stops it with SIGINT and
summarizes what it printed. From Python::

    result = parse_dmon(text, interval_ms=100)            # a saved capture

    sampler = DcgmSampler(interval_ms=100).start()        # around a training loop
    try:
        train()
    finally:
        result = sampler.stop()
    result.tca_mean_ratio()                               # {"GPU 0": 0.701, ...}

Fields default to 1001 GRACT (graphics engine active), 1002 SMACT (SM active), 1004 TENSO
(tensor pipe active = TCA) and 1005 DRAMA (DRAM active); all are ratios in 0..1, not percent.

Timestamps: in a saved file tick ``k`` (one row per entity) is at ``k x interval_ms``; live,
a tick is at the wall-clock time its first row arrived, counted from ``start()``. Warm-up is
trimmed by time: ticks before ``warmup_s`` seconds are dropped, whatever the interval.

Percent guard: a ratio field above 1.05 or below 0 is an input error (the file was rescaled
to percent, or is not dmon output); values in (1.0, 1.05] are kept as printed and counted in
a warning.

When dcgmi is missing, cannot reach the host engine, or may not or cannot profile this GPU,
the result is ``DcgmResult(available=False, reason=...)``, rendered as
"DCGM unavailable: <reason>; TCA not measured" - never a number.

Modules: ``dcgm_fields`` (field id -> short name -> long name table), ``dcgm_dmon`` (the dmon
text format and dcgmi's error lines), ``dcgm_summary`` (results, per-field statistics),
``dcgm_sampler`` (the background process); this module renders and holds the CLI.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from toolkit import cli
from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    existing_file,
    fmt_num,
    positive_float,
    positive_int,
    print_json,
    render_table,
)
from toolkit.errors import InputError
from toolkit.profiling.instruments.dcgm_fields import (
    DEFAULT_FIELD_IDS,
    FIELDS,
    RATIO_UNIT,
    TENSOR_ACTIVE,
    DcgmField,
)
from toolkit.profiling.instruments.dcgm_sampler import (
    DEFAULT_INTERVAL_MS,
    DEFAULT_SAMPLE_WARMUP_S,
    DcgmSampler,
    dmon_command,
    sample,
)
from toolkit.profiling.instruments.dcgm_summary import (
    RATIO_MAX,
    DcgmResult,
    EntitySummary,
    FieldSummary,
    parse_dmon,
    unavailable,
)

__all__ = [
    "DEFAULT_FIELD_IDS",
    "FIELDS",
    "RATIO_MAX",
    "DcgmField",
    "DcgmResult",
    "DcgmSampler",
    "EntitySummary",
    "FieldSummary",
    "dmon_command",
    "main",
    "parse_dmon",
    "render",
    "sample",
    "unavailable",
]

PROG = "python -m toolkit.profiling.dcgm_profiler"

DEFAULT_SAMPLE_DURATION_S = 15.0


# ----------------------------------------------------------------------------- rendering


def _fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    return f"{value:.4f}" if unit == RATIO_UNIT else fmt_num(value, 4)


def render(result: DcgmResult) -> str:
    """The table view of a result; an unavailable result is one 'DCGM unavailable' line."""
    if not result.available:
        return result.unavailable_message()
    lines = [_headline(result), ""]
    rows = [
        [
            e.entity,
            "-" if f.field_id is None else f.field_id,
            f.short_name,
            f.long_name or "-",
            f.unit,
            _fmt_value(f.mean, f.unit),
            _fmt_value(f.p50, f.unit),
            _fmt_value(f.min, f.unit),
            _fmt_value(f.max, f.unit),
            f.samples,
            f.not_available,
        ]
        for e in result.entities
        for f in e.fields
    ]
    headers = ["entity", "field", "name", "long name", "unit", "mean", "p50", "min", "max"]
    lines.append(render_table([*headers, "samples", "N/A"], rows))
    lines += ["", _tca_line(result)]
    lines += [f"note: {n}" for n in _notes(result)]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def _notes(result: DcgmResult) -> list[str]:
    """Why fields have no value; one line when the same note holds for every field."""
    notes = [(e.entity, f.short_name, f.note) for e in result.entities for f in e.fields]
    texts = {note for _, _, note in notes}
    if len(texts) == 1 and None not in texts:
        return [f"every field: {texts.pop()}"]
    return [f"{entity} {name}: {note}" for entity, name, note in notes if note]


def _headline(result: DcgmResult) -> str:
    stop = "; stopped by signal" if result.stopped_by_signal else ""
    span = "" if result.span_s is None else f", span {result.span_s:.2f} s"
    return (
        f"DCGM dmon: {len(result.entities)} entit{'y' if len(result.entities) == 1 else 'ies'}, "
        f"{result.ticks_total} ticks at {result.interval_ms:g} ms, "
        f"{result.ticks_after_warmup} after {result.warmup_s:g} s warm-up{span} "
        f"(timestamps: {result.timestamps}){stop}"
    )


def _tca_line(result: DcgmResult) -> str:
    tca = result.tca_mean_ratio()
    if not any(f.field_id == TENSOR_ACTIVE for e in result.entities for f in e.fields):
        return "TCA (field 1004 TENSO) not watched; TCA not measured"
    parts = [f"{entity} {_fmt_value(mean, RATIO_UNIT)}" for entity, mean in tca.items()]
    return "TCA mean (field 1004 TENSO, tensor pipe active, ratio 0..1): " + ", ".join(parts)


def emit(result: DcgmResult, output_format: str) -> int:
    """Print ``result`` and return the exit code: 0 measured, 1 nothing measured."""
    if output_format == "json":
        print_json(result)
    else:
        print(render(result))
    if not result.available:
        return EXIT_FAILED
    if not result.measured:
        if output_format == "table":
            sys.stderr.write(
                f"{PROG}: nothing measured: no tick after the {result.warmup_s:g} s warm-up "
                "had a value (all N/A, or the capture is shorter than the warm-up)\n"
            )
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------- CLI

EPILOG = """\
examples:
  %(prog)s parse dmon.txt --interval-ms 100 --warmup-s 5
  %(prog)s sample --duration-s 60 --interval-ms 100 --gpus 0,1 --format json

dcgmi dmon's -d is in MILLISECONDS (-d 100 = ten ticks per second).
exit codes: 0 measured; 1 DCGM unavailable or nothing measured; 2 usage or input error.
"""


def _id_list(flag: str, minimum: int) -> Any:
    def parse(text: str) -> list[int]:
        try:
            values = [int(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} expects comma-separated integers like 1001,1004, got {text!r}"
            ) from None
        if any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"{flag} expects integers >= {minimum}, got {text}")
        return values

    return parse


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Tensor-core activity (TCA) and engine activity from DCGM's dcgmi dmon.",
        epilog=EPILOG,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="{parse,sample}")
    parse = verbs.add_parser(
        "parse",
        help="summarize a saved dcgmi dmon capture",
        description="Summarize a saved dcgmi dmon capture; tick k is at k x --interval-ms.",
    )
    parse.add_argument("file", type=existing_file("FILE"), metavar="FILE", help="dcgmi dmon output")
    parse.add_argument(
        "--interval-ms",
        type=positive_float("--interval-ms"),
        default=DEFAULT_INTERVAL_MS,
        metavar="MS",
        help=f"the -d the capture was taken with, in milliseconds (default: {DEFAULT_INTERVAL_MS})",
    )
    parse.add_argument(
        "--warmup-s",
        type=cli.non_negative_float("--warmup-s"),
        default=0.0,
        metavar="S",
        help="drop ticks in the first S seconds (default: 0)",
    )
    add_format_flag(parse)
    live = verbs.add_parser(
        "sample",
        help="run dcgmi dmon live and summarize",
        description="Run dcgmi dmon for --duration-s seconds, stop it with SIGINT, summarize.",
    )
    live.add_argument(
        "--duration-s",
        type=positive_float("--duration-s"),
        default=DEFAULT_SAMPLE_DURATION_S,
        metavar="S",
        help=f"how long to sample, in seconds (default: {DEFAULT_SAMPLE_DURATION_S:g})",
    )
    live.add_argument(
        "--interval-ms",
        type=positive_int("--interval-ms"),
        default=DEFAULT_INTERVAL_MS,
        metavar="MS",
        help=f"dcgmi -d in whole milliseconds (default: {DEFAULT_INTERVAL_MS})",
    )
    live.add_argument(
        "--warmup-s",
        type=cli.non_negative_float("--warmup-s"),
        default=DEFAULT_SAMPLE_WARMUP_S,
        metavar="S",
        help=f"drop ticks in the first S seconds (default: {DEFAULT_SAMPLE_WARMUP_S:g})",
    )
    live.add_argument(
        "--fields",
        type=_id_list("--fields", 1),
        default=list(DEFAULT_FIELD_IDS),
        metavar="IDS",
        help="DCGM field ids for dcgmi -e (default: 1001,1002,1004,1005 = GRACT,SMACT,TENSO,DRAMA)",
    )
    live.add_argument(
        "--gpus",
        type=_id_list("--gpus", 0),
        metavar="IDS",
        help="GPU ids for dcgmi -i (default: all)",
    )
    live.add_argument(
        "--count", type=positive_int("--count"), metavar="N", help="dcgmi -c: stop after N ticks"
    )
    add_format_flag(live)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "parse":
        text = cli.read_text(args.file, "FILE")
        result = parse_dmon(text, args.interval_ms, args.warmup_s)
        if not result.available and "#Entity" not in text:  # not a capture at all: bad input
            raise InputError(f"FILE {args.file}: not `dcgmi dmon` output: {result.reason}")
        if not result.available:  # a capture that measured nothing: exit 1, as for `sample`
            result = dataclasses.replace(result, reason=f"{args.file}: {result.reason}")
        return emit(result, args.format)
    if args.warmup_s >= args.duration_s:
        raise InputError(
            f"--warmup-s {args.warmup_s:g} must be shorter than --duration-s {args.duration_s:g}"
        )
    result = sample(
        args.duration_s,
        args.fields,
        args.interval_ms,
        args.gpus,
        warmup_s=args.warmup_s,
        count=args.count,
    )
    return emit(result, args.format)
