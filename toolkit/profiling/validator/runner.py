"""Runtime validation (L1 of the Validation Pyramid): train briefly, measure, check the pipeline.

    python -m toolkit.profiling.l0_runner                       # the built-in example
    python -m toolkit.profiling.l0_runner --entry pkg.train:build_spec
    python -m toolkit.profiling.l0_runner --script train.py -- --lr 3e-4

Verdict PASS (exit 0) or FAIL (exit 1) with one line per reason; exit 2 on a usage/input error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from toolkit import cli
from toolkit.errors import InputError
from toolkit.profiling.l0_args import build_parser
from toolkit.profiling.spec import DEMO_ENTRY
from toolkit.profiling.validator.checks import Check, verdict
from toolkit.profiling.validator.entry_mode import run_entry
from toolkit.profiling.validator.report import RuntimeReport, render
from toolkit.profiling.validator.script_mode import run_script
from toolkit.profiling.validator.thresholds import Thresholds, load_thresholds


def _l0(args):
    from toolkit.profiling.validator.l0_static import entry_source, run_l0

    path = Path(args.script) if args.script else entry_source(args.entry or DEMO_ENTRY)
    return run_l0(path)


def main(argv: Sequence[str] | None = None) -> int:
    t_start = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, script_args = argv[:i], argv[i + 1 :]
    args = build_parser().parse_args(argv)
    script_args = script_args or list(args.script_args)
    if script_args and args.script is None:
        raise InputError("arguments after '--' are passed to --script; give --script PATH")
    if args.resume_check is not None and args.script is not None:
        raise InputError("--resume-check applies to --entry mode only")
    if args.warmup_steps < 0:
        raise InputError(f"--warmup-steps expects an integer >= 0, got {args.warmup_steps}")
    thresholds = load_thresholds(args.baseline) if args.baseline else Thresholds()
    if not args.skip_l0:
        cli.report_progress("L0 static check")
    l0 = None if args.skip_l0 else _l0(args)
    if l0 is not None and l0[1].status == "fail" and not args.l0_continue:
        report = RuntimeReport(
            verdict="FAIL",
            checks=[
                l0[1],
                Check("training", "skip", "not run: L0 found errors (--l0-continue trains anyway)"),
            ],
            mode="script" if args.script else "entry",
            target=args.script or args.entry or DEMO_ENTRY,
            device="not started",
            torch_version=torch.__version__,
            static=l0[0].as_dict() if l0[0] else None,
        )
    elif args.script is not None:
        report = run_script(args, script_args, thresholds, t_start)
    else:
        report = run_entry(args, thresholds, t_start)
    if l0 is not None and report.static is None:
        report.checks.insert(0, l0[1])
        report.static = l0[0].as_dict() if l0[0] else None
        report.verdict = verdict(report.checks)
    if os.environ.get("RANK", "0") != "0" and os.environ.get("WORLD_SIZE", "1") != "1":
        pass  # under torchrun only rank 0 reports (its checks include every rank's records)
    elif args.format == "json":
        cli.print_json(report)
    else:
        print(render(report))
    return cli.EXIT_OK if report.verdict == "PASS" else cli.EXIT_FAILED
