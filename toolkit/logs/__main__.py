"""``python -m toolkit.logs analyze|compare|summary``: training-log analysis."""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    fmt_num,
    positive_float,
    positive_int,
    print_json,
    render_table,
    run,
    to_jsonable,
)
from toolkit.errors import InputError
from toolkit.logs.compare import DEFAULT_TOLERANCE, Comparison, compare
from toolkit.logs.config import Thresholds, load_thresholds
from toolkit.logs.detectors import Report, analyze
from toolkit.logs.postrun import summarize
from toolkit.logs.rank import MODES
from toolkit.logs.readers import FORMATS, read_log
from toolkit.logs.series import Run
from toolkit.logs.watch import Event
from toolkit.logs.watch import watch as watch_log

PROG = "python -m toolkit.logs"

DESCRIPTION = """\
Training-log analysis. Reads HF trainer_state.json, Lightning metrics.csv, JSONL, CSV,
TensorBoard event files (file or directory), MLflow file stores (mlruns/, a run folder),
W&B offline runs (wandb/offline-run-*/, run-*.wandb) and key=value text logs (format
auto-detected). MLflow and W&B need their extras: pip install 'labcoat[mlflow,wandb]'.

  analyze PATH      findings: NaN/Inf, loss and grad-norm spikes, divergence, plateau,
                    overfitting, lr schedule exhausted / no warmup, throughput drops.
                    Thresholds: toolkit/logs/config.py (Thresholds), override with --config YAML.
  compare RUN BASE  per-metric relative deviation at matched steps (EMA-smoothed, baseline
                    interpolated onto the run's steps); alerts past --tolerance.
  summary PATH      metrics, roles, step ranges, counts, first/last/min/max.
  postrun PATH      after a run: best value/step of --metric, the best complete checkpoint
                    by it (--checkpoints DIR or GLOB), curves (--plot), the next step.
  watch PATH        follow a growing log; report NaN/Inf, spikes, divergence and throughput
                    drops as they appear (one line each; --format json: one JSON object per
                    line), the remaining findings when it ends (--pid exits, --idle, --max-s).

Exit codes: 0 ok; 1 analyze or watch found an error-level finding / compare raised an alert;
2 usage or input error (unreadable file, named with its line).
"""


def _path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} is missing; expected a log file or directory")
    return path


def _tolerance(text: str) -> tuple[str | None, float]:
    name, _, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--tolerance expects a number or METRIC=NUMBER, got {text!r}"
        ) from None
    if not np.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"--tolerance expects a positive number, got {text!r}")
    return (name or None), number


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    common = {"formatter_class": argparse.RawDescriptionHelpFormatter}

    a = sub.add_parser("analyze", help="find problems in a training log", **common)
    a.add_argument("path", type=_path, help="log file or directory")
    a.add_argument("--log-format", choices=FORMATS, help="skip auto-detection")
    a.add_argument("--config", type=_path, help="YAML with threshold overrides (see Thresholds)")
    a.add_argument(
        "--plot", metavar="OUT.png", help="write a PNG of the curves with findings marked"
    )
    add_format_flag(a)

    c = sub.add_parser("compare", help="compare a run with a baseline run", **common)
    c.add_argument("run", type=_path)
    c.add_argument("baseline", type=_path)
    c.add_argument(
        "--tolerance",
        type=_tolerance,
        action="append",
        metavar="[METRIC=]REL",
        help=f"relative tolerance, default {DEFAULT_TOLERANCE}; repeat as METRIC=REL per metric or role",
    )
    add_format_flag(c)

    s = sub.add_parser("summary", help="what the log holds", **common)
    s.add_argument("path", type=_path)
    s.add_argument("--log-format", choices=FORMATS, help="skip auto-detection")
    add_format_flag(s)

    pr = sub.add_parser(
        "postrun", help="after a run: best checkpoint by a metric, curves, next step", **common
    )
    pr.add_argument("path", type=_path, help="the run's log file or directory")
    pr.add_argument(
        "--metric", help="metric (name or role); default val_loss when logged, else train_loss"
    )
    pr.add_argument("--mode", choices=MODES, default="min", help="min (loss) or max (accuracy); default min")  # fmt: skip
    pr.add_argument("--checkpoints", metavar="DIR|GLOB",
                    help="folder holding checkpoint-N entries, or a glob such as 'ckpt/*.pt'")  # fmt: skip
    pr.add_argument("--config", type=_path, help="YAML with threshold overrides (see Thresholds)")
    pr.add_argument(
        "--plot", metavar="OUT.png", help="write a PNG of the curves with findings marked"
    )
    add_format_flag(pr)

    w = sub.add_parser(
        "watch", help="follow a growing log, report problems as they appear", **common
    )
    w.add_argument("path", type=Path, help="log file or directory (may not exist yet)")
    w.add_argument("--log-format", choices=FORMATS, help="skip auto-detection")
    w.add_argument("--config", type=_path, help="YAML with threshold overrides (see Thresholds)")
    w.add_argument("--interval", type=positive_float("--interval"), default=0.5,
                   help="seconds between checks of the log (default 0.5)")  # fmt: skip
    w.add_argument("--pid", type=positive_int("--pid"), help="stop when this process exits (the training)")  # fmt: skip
    w.add_argument("--idle", type=positive_float("--idle"), metavar="S", help="stop after S seconds without growth")  # fmt: skip
    w.add_argument("--max-s", type=positive_float("--max-s"), metavar="S", help="stop after S seconds")  # fmt: skip
    w.add_argument("--exit-on-error", action="store_true",
                   help="stop at the first error-level finding (exit 1), e.g. to kill the run")  # fmt: skip
    add_format_flag(w)
    return parser


def _summary_rows(run: Run) -> list[dict]:
    rows = []
    for series in run.series.values():
        finite = series.values[np.isfinite(series.values)]
        rows.append(
            {
                "metric": series.name,
                "role": series.role if run.roles.get(series.role or "") == series.name else None,
                "points": len(series),
                "step_first": int(series.steps[0]),
                "step_last": int(series.steps[-1]),
                "non_finite": int(series.values.size - finite.size),
                "first": float(series.values[0]),
                "last": float(series.values[-1]),
                "min": float(finite.min()) if finite.size else None,
                "max": float(finite.max()) if finite.size else None,
            }
        )
    return rows


def _print_warnings(warnings: list[str], limit: int = 10) -> None:
    for w in warnings[:limit]:
        print(f"warning: {w}")
    if len(warnings) > limit:
        print(
            f"warning: ... {len(warnings) - limit} more reader warnings (--format json lists all)"
        )


def _analyze_text(report: Report) -> str:
    lines = [
        f"{report.path} ({report.format}); roles: "
        + ", ".join(f"{k}={v}" for k, v in report.roles.items())
    ]
    if not report.findings:
        lines.append("no findings")
    for f in report.findings:
        span = f"{f.step_start}" if f.step_end == f.step_start else f"{f.step_start}-{f.step_end}"
        lines.append(f"\n[{f.severity.upper()}] {f.kind} at step {span} ({f.metric})")
        lines.append(f"  {f.message}")
        for i, cause in enumerate(f.causes[:3], start=1):
            lines.append(f"  {i}. {cause.cause} -> check: {cause.check}")
    n_err = len(report.errors)
    lines.append(
        f"\n{n_err} error(s), {sum(f.severity == 'warning' for f in report.findings)} warning(s)"
    )
    return "\n".join(lines)


def _compare_text(result: Comparison) -> str:
    headers = ["metric", "baseline", "tol", "steps", "max dev", "at step", "final dev", "alert"]
    rows = []
    for m in result.metrics:
        pct = lambda v: "-" if v is None else f"{100 * v:+.1f}%"  # noqa: E731
        rows.append(
            [
                m.metric,
                m.baseline_metric,
                f"{100 * m.tolerance:g}%",
                "-" if m.step_start is None else f"{m.step_start}-{m.step_end}",
                pct(m.max_rel_dev),
                m.max_dev_step,
                pct(m.final_rel_dev),
                f"ALERT from step {m.first_alert_step}" if m.alert else (m.note or "ok"),
            ]
        )
    lines = [render_table(headers, rows)]
    if result.only_in_run:
        lines.append("only in run: " + ", ".join(result.only_in_run))
    if result.only_in_baseline:
        lines.append("only in baseline: " + ", ".join(result.only_in_baseline))
    lines.append(f"{len(result.alerts)} alert(s)")
    return "\n".join(lines)


def tune_allocator() -> bool:
    """Let glibc's heap grow in 256 MiB steps and keep them (``M_TOP_PAD``); True if applied.

    Parsing a large log churns through MiB-sized temporaries; with the default settings glibc
    gives that memory back to the kernel and faults it in again (in a VM about half the cold
    read time of a 100 MB log). Only this command's own process is tuned; ``read_log`` called
    from user code never touches the allocator. No effect, and no error, off glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(-2, 256 << 20))  # M_TOP_PAD
    except (OSError, AttributeError):
        return False


def _finding_line(event: Event) -> str:
    f = event.finding
    cause = f" -> check: {f.causes[0].check}" if f.causes else ""
    when = time.strftime("%H:%M:%S", time.localtime(event.detected_at))
    return f"{when} [{f.severity.upper()}] {f.kind} at step {f.step_start} ({f.metric}): {f.message}{cause}"


def _watch(args: argparse.Namespace) -> int:
    thresholds = load_thresholds(args.config) if args.config else Thresholds()
    as_json = args.format == "json"

    def emit(obj: dict) -> None:
        sys.stdout.write(json.dumps(to_jsonable(obj)) + "\n")
        sys.stdout.flush()

    def on_event(event: Event) -> None:
        if as_json:
            emit({"event": "finding", **to_jsonable(event)})
        else:
            print(_finding_line(event), flush=True)

    if as_json:
        emit({"event": "watching", "path": str(args.path), "at": time.time()})
    else:
        print(f"watching {args.path} (every {args.interval:g} s; Ctrl-C to stop)", flush=True)
    summary = watch_log(
        args.path, on_event, fmt=args.log_format, thresholds=thresholds,
        interval_s=args.interval, pid=args.pid, idle_s=args.idle, max_s=args.max_s,
        exit_on_error=args.exit_on_error,
    )  # fmt: skip
    if as_json:
        emit({"event": "end", "reason": summary.reason, "passes": summary.passes,
              "duration_s": summary.duration_s, "findings": len(summary.events),
              "errors": summary.errors, "warnings": summary.warnings})  # fmt: skip
    else:
        _print_warnings(summary.warnings)
        print(
            f"stopped: {summary.reason}; {len(summary.events)} finding(s), {summary.errors} error(s)"
        )
    return EXIT_FAILED if summary.errors else EXIT_OK


def _postrun(args: argparse.Namespace) -> int:
    thresholds = load_thresholds(args.config) if args.config else Thresholds()
    log = read_log(args.path)
    pattern = directory = None
    if args.checkpoints:
        if Path(args.checkpoints).is_dir():
            directory = args.checkpoints
        else:
            pattern = args.checkpoints
    res = summarize(log, args.metric, args.mode, pattern, directory, thresholds)
    if args.plot:
        from toolkit.logs.plot import plot_run

        res.plot = str(plot_run(log, res.findings, args.plot))
    if args.format == "json":
        print_json(res)
        return EXIT_OK
    ck = res.best_checkpoint
    rows = [
        ("log", f"{res.path} ({res.format})"),
        ("metric", f"{res.metric} ({res.mode})"),
        ("best", f"{fmt_num(res.best, 6)} at step {res.best_step}"),
        ("final", f"{fmt_num(res.final, 6)} at step {res.final_step}"),
        ("best checkpoint", f"{ck.path} (step {ck.step}, {res.metric} {fmt_num(ck.value, 6)} at step {ck.value_step})" if ck else
         (f"none of {len(res.checkpoints)} usable" if res.checkpoints else "no checkpoints given (--checkpoints)")),
        ("findings", ", ".join(f"{f.severity} {f.kind}@{f.step_start}" for f in res.findings) or "none"),
        *[("reason", r) for r in res.reasons],
        ("next step", res.next_step),
    ]  # fmt: skip
    if res.plot:
        rows.append(("plot", res.plot))
    print(render_table(("field", "value"), rows))
    skipped = [c for c in res.checkpoints if not c.complete]
    for c in skipped:
        print(f"skipped incomplete checkpoint {c.path}: {c.problem}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "watch":
        return _watch(args)
    if args.command == "postrun":
        return _postrun(args)
    if args.command == "summary":
        log = read_log(args.path, args.log_format)
        rows = _summary_rows(log)
        if args.format == "json":
            print_json(
                {
                    "path": str(log.path),
                    "format": log.format,
                    "roles": log.roles,
                    "metrics": rows,
                    "warnings": log.warnings,
                }
            )
        else:
            print(f"{log.path} ({log.format})")
            headers = [
                "metric",
                "role",
                "points",
                "steps",
                "non-finite",
                "first",
                "last",
                "min",
                "max",
            ]
            print(
                render_table(
                    headers,
                    [
                        [
                            r["metric"],
                            r["role"] or "",
                            r["points"],
                            f"{r['step_first']}-{r['step_last']}",
                            r["non_finite"],
                            fmt_num(r["first"], 4),
                            fmt_num(r["last"], 4),
                            fmt_num(r["min"], 4),
                            fmt_num(r["max"], 4),
                        ]
                        for r in rows
                    ],
                )
            )
            _print_warnings(log.warnings)
        return EXIT_OK
    if args.command == "analyze":
        thresholds = load_thresholds(args.config) if args.config else Thresholds()
        log = read_log(args.path, args.log_format)
        report = analyze(log, thresholds)
        if args.plot:
            from toolkit.logs.plot import plot_run

            plot_run(log, report.findings, args.plot)
        if args.format == "json":
            print_json({**report.__dict__, "plot": args.plot})
        else:
            print(_analyze_text(report))
            _print_warnings(report.warnings)
            if args.plot:
                print(f"plot: {args.plot}")
        return EXIT_FAILED if report.errors else EXIT_OK
    # compare
    tol: float | dict[str, float] = DEFAULT_TOLERANCE
    if args.tolerance:
        tol = {"default": DEFAULT_TOLERANCE}
        for name, value in args.tolerance:
            tol[name or "default"] = value
    result = compare(read_log(args.run), read_log(args.baseline), tol)
    if args.format == "json":
        print_json(result.__dict__ | {"alerts": len(result.alerts)})
    else:
        print(_compare_text(result))
    return EXIT_FAILED if result.alerts else EXIT_OK


if __name__ == "__main__":
    tune_allocator()
    run(main, PROG)

__all__ = ["main", "InputError"]
