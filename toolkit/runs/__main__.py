"""``python -m toolkit.runs sweep|run|plan <verb>``: the runs registry from the shell."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolkit import cli
from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    fmt_num,
    non_negative_int,
    percent,
    positive_float,
    positive_int,
    print_json,
    render_table,
    run,
)
from toolkit.errors import InputError
from toolkit.logs.rank import BY, MODES
from toolkit.runs import control, db, grid, plans, slurm
from toolkit.runs.compare import SweepComparison, compare_sweep
from toolkit.runs.local import GpuPolicy
from toolkit.runs.models import BACKENDS, STATUSES, TERMINAL, Run

PROG = "python -m toolkit.runs"

DESCRIPTION = """\
Track runs and sweeps in a SQLite registry (default .labcoat/runs.db in the project; --db).

  sweep create|grid|show|list|start    group runs; grid = one run per parameter combination
  run   create|list|show|logs|cancel|start
  plan  save|list|show                 experiment plans (markdown) linked to sweeps

Every command first reconciles active runs (a finished process gets its exit code; a vanished
one is marked failed). Exit codes: 0 ok, 1 some run could not start / nothing to cancel,
2 usage error, unknown name, unreadable or foreign registry.
"""


def _common() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        type=Path,
        default=None,
        help="registry file (default: $LABCOAT_RUNS_DB or .labcoat/runs.db in the project, "
        "created when missing); an explicit --db must already be a registry",
    )
    parent.add_argument(
        "--create-db",
        action="store_true",
        help="create the registry at --db when it does not exist (or is an empty file)",
    )
    add_format_flag(parent)
    return parent


def _launch_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gpus",
        type=cli.non_negative_int("--gpus"),
        default=0,
        help="GPUs per run (0 = CPU, no GPU variables set)",
    )
    p.add_argument("--backend", choices=BACKENDS, default="local")
    p.add_argument("--cwd", type=Path, default=None, help="working directory (default: here)")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment variable for the run (repeatable)",
    )
    p.add_argument("--time", default=None, help="slurm: time limit (default 04:00:00)")
    p.add_argument("--partition", default=None, help="slurm: partition")
    p.add_argument("--account", default=None, help="slurm: account")
    p.add_argument(
        "--signal-lead-s",
        type=cli.positive_int("--signal-lead-s"),
        default=None,
        help="slurm: USR1 this many seconds before --time (default: a quarter of it, max 300)",
    )
    p.add_argument("--auto-start", action="store_true", help="start right after creating")
    _start_flags(p)


def _start_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        action="store_true",
        help="when GPUs are busy, retry every --retry-delay s instead of leaving runs queued",
    )
    p.add_argument("--retry-delay", type=positive_float("--retry-delay"), default=10.0)
    p.add_argument(
        "--max-wait",
        type=positive_float("--max-wait"),
        default=None,
        help="give up waiting after this many seconds",
    )
    p.add_argument(
        "--max-mem-used-pct", type=percent("--max-mem-used-pct"), default=GpuPolicy.max_mem_used_pct
    )
    p.add_argument("--max-util-pct", type=percent("--max-util-pct"), default=GpuPolicy.max_util_pct)
    p.add_argument("--samples", type=positive_int("--samples"), default=GpuPolicy.samples)


def build_parser() -> Parser:
    common = _common()
    parser = Parser(prog=PROG, description=DESCRIPTION)
    groups = parser.add_subparsers(dest="group", required=True, parser_class=Parser)

    sweep = groups.add_parser("sweep", help="sweeps").add_subparsers(
        dest="verb", required=True, parser_class=Parser
    )
    p = sweep.add_parser("create", parents=[common], help="create a sweep")
    p.add_argument("--name", required=True)
    p.add_argument("--goal", default="")
    p.add_argument("--plan", default=None, help="link to a saved plan")
    p = sweep.add_parser("grid", parents=[common], help="one run per parameter combination")
    p.add_argument("--name", required=True, help="sweep (created if absent)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2")
    p.add_argument("--command", required=True, help="template, e.g. 'python t.py --lr {lr}'")
    p.add_argument("--goal", default="")
    p.add_argument("--plan", default=None)
    _launch_flags(p)
    p = sweep.add_parser(
        "show", parents=[common], help="a sweep, its runs, their metrics and the best run"
    )
    p.add_argument("--name", required=True)
    p.add_argument("--metric", default=None,
                   help="metric to rank by (name or role; default val_loss when logged, else train_loss)")  # fmt: skip
    p.add_argument("--mode", choices=MODES, default="min", help="min (loss) or max (accuracy); default min")  # fmt: skip
    p.add_argument("--by", choices=BY, default="best",
                   help="rank by the best value on each curve (default) or the final one")  # fmt: skip
    p.add_argument("--log", default=None, metavar="TEMPLATE",
                   help="each run's log, e.g. '{workdir}/out/{name}/metrics.jsonl' or 'runs/lr{lr}' (default: its captured output)")  # fmt: skip
    p.add_argument("--plot", default=None, metavar="OUT.png", help="the metric's curves of every run in one PNG")  # fmt: skip
    sweep.add_parser("list", parents=[common], help="all sweeps")
    p = sweep.add_parser("start", parents=[common], help="start the sweep's queued runs")
    p.add_argument("--name", required=True)
    _start_flags(p)

    runs = groups.add_parser("run", help="runs").add_subparsers(
        dest="verb", required=True, parser_class=Parser
    )
    p = runs.add_parser("create", parents=[common], help="register a run (queued)")
    p.add_argument("--name", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--sweep", default=None)
    _launch_flags(p)
    p = runs.add_parser("list", parents=[common], help="runs, oldest first")
    p.add_argument("--sweep", default=None)
    p.add_argument("--status", action="append", default=[], choices=STATUSES)
    p = runs.add_parser("show", parents=[common], help="one run")
    p.add_argument("name")
    p = runs.add_parser("logs", parents=[common], help="a run's output")
    p.add_argument("name")
    p.add_argument("--follow", action="store_true", help="stream until the run ends")
    p.add_argument(
        "--tail", type=non_negative_int("--tail"), default=None, help="last N lines only"
    )
    p = runs.add_parser("cancel", parents=[common], help="stop a run")
    p.add_argument("name")
    p.add_argument(
        "--grace",
        type=positive_float("--grace"),
        default=10.0,
        help="seconds between SIGTERM and SIGKILL (local)",
    )
    p = runs.add_parser("start", parents=[common], help="start queued runs")
    p.add_argument("names", nargs="+")
    _start_flags(p)

    plan = groups.add_parser("plan", help="experiment plans").add_subparsers(
        dest="verb", required=True, parser_class=Parser
    )
    p = plan.add_parser("save", parents=[common], help="store a markdown plan")
    p.add_argument("path", type=Path)
    p.add_argument("--name", default=None, help="plan name (default: slug of the title)")
    p.add_argument("--sweep", action="append", default=[], help="link to sweep (repeatable)")
    plan.add_parser("list", parents=[common], help="all plans")
    p = plan.add_parser("show", parents=[common], help="one plan")
    p.add_argument("name")
    return parser


# ----------------------------------------------------------------------------- helpers


def _env(items: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--env {item!r}: expected KEY=VALUE")
        env[key] = value
    return env


def _spec_extras(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        k: getattr(args, k)
        for k in ("time", "partition", "account", "signal_lead_s")
        if getattr(args, k)
    }
    if args.backend == "local" and options:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in options)
        raise InputError(f"{flags}: Slurm options need --backend slurm")
    workdir = (args.cwd or Path.cwd()).resolve()
    if not workdir.is_dir():
        raise InputError(f"--cwd {workdir}: not a directory")
    return {
        "workdir": str(workdir),
        "env": _env(args.env),
        "gpus": args.gpus,
        "backend": args.backend,
        "options": options,
    }


def _checked(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``specs``, after building each Slurm run's batch script: a run Slurm could never start
    (bad --time, a multi-node shell command...) is refused before anything is registered."""
    for spec in specs:
        if spec["backend"] == "slurm":
            slurm.check(spec["name"], spec["command"], spec["gpus"], spec["options"])
    return specs


def _start_options(args: argparse.Namespace) -> control.StartOptions:
    policy = GpuPolicy(args.max_mem_used_pct, args.max_util_pct, max(1, args.samples))
    return control.StartOptions(policy, args.wait, args.retry_delay, args.max_wait)


def _where(r: Run) -> str:
    if r.job_id:
        return f"job {r.job_id}"
    return f"pid {r.pid}" if r.pid else ""


def _runs_table(runs: Sequence[Run]) -> str:
    return render_table(
        ["NAME", "STATUS", "EXIT", "GPUS", "BACKEND", "WHERE", "SWEEP", "STARTED", "NOTE"],
        [
            [
                r.name,
                r.status,
                r.exit_code,
                ",".join(map(str, r.gpus))
                or (f"({r.gpus_requested})" if r.gpus_requested else "-"),
                r.backend,
                _where(r),
                r.sweep or "",
                r.started or "",
                r.note or "",
            ]
            for r in runs
        ],
    )


def _show_run(r: Run) -> str:
    rows = [
        ("name", r.name),
        ("status", r.status),
        ("exit code", r.exit_code),
        ("command", r.command),
        ("working dir", r.workdir),
        ("sweep", r.sweep),
        ("params", r.params or None),
        ("backend", r.backend),
        ("host", r.host),
        ("job id", r.job_id),
        ("pid", r.pid),
        ("GPUs requested", r.gpus_requested),
        ("GPUs assigned", ",".join(map(str, r.gpus)) or None),
        ("env", r.env or None),
        ("created", r.created),
        ("started", r.started),
        ("ended", r.ended),
        ("log", r.log_path),
        ("metrics", r.metrics),
        ("note", r.note),
    ]
    return render_table(["FIELD", "VALUE"], [(k, v) for k, v in rows if v is not None])


def _results(args: argparse.Namespace, results: list[control.StartResult]) -> int:
    if args.format == "json":
        print_json(results)
    else:
        print(
            render_table(
                ["RUN", "STARTED", "STATUS", "NOTE"],
                [(r.run, "yes" if r.started else "no", r.status, r.note) for r in results],
            )
        )
    return EXIT_OK if all(r.started for r in results) else EXIT_FAILED


def _created(conn, args: argparse.Namespace, created: list[Run]) -> int:
    if args.auto_start:
        return _results(
            args, control.start_runs(conn, [r.name for r in created], _start_options(args))
        )
    if args.format == "json":
        print_json(created if len(created) != 1 or args.group == "sweep" else created[0])
    else:
        print(_runs_table(created))
    return EXIT_OK


# ----------------------------------------------------------------------------- verbs


def _sweep(conn, args: argparse.Namespace) -> int:
    if args.verb == "create":
        sweep = db.create_sweep(conn, args.name, args.goal, args.plan)
        if args.format == "json":
            print_json(sweep)
        else:
            print(f"sweep {sweep.name} created")
        return EXIT_OK
    if args.verb == "grid":
        db.check_name("sweep", args.name)
        params = grid.parse_params(args.param)
        specs = grid.expand(args.name, params, args.command)
        extras = _spec_extras(args)
        specs = _checked([{**s, **extras} for s in specs])
        db.create_sweep(conn, args.name, args.goal, args.plan, params, args.command, exist_ok=True)
        created = db.create_runs(conn, specs, sweep=args.name)
        return _created(conn, args, created)
    if args.verb == "list":
        sweeps = db.list_sweeps(conn)
        if args.format == "json":
            print_json(sweeps)
        else:
            print(
                render_table(
                    ["NAME", "GOAL", "PLAN", "CREATED"],
                    [(s.name, s.goal, s.plan or "", s.created) for s in sweeps],
                )
            )
        return EXIT_OK
    if args.verb == "start":
        db.get_sweep(conn, args.name)
        queued = [
            r.name
            for r in db.list_runs(conn, sweep=args.name, statuses=["queued"])
            if r.job_id is None
        ]
        return _results(args, control.start_runs(conn, queued, _start_options(args)))
    sweep = db.get_sweep(conn, args.name)
    runs = db.list_runs(conn, sweep=args.name)
    counts = Counter(r.status for r in runs)
    cmp = compare_sweep(sweep.name, runs, args.metric, args.mode, args.by, args.log, args.plot)
    if args.format == "json":
        print_json({"sweep": sweep, "counts": dict(counts), "runs": runs, "comparison": cmp})
        return EXIT_OK
    print(
        f"sweep {sweep.name}  goal: {sweep.goal or '-'}  plan: {sweep.plan or '-'}  "
        f"created {sweep.created}"
    )
    if sweep.params:
        print("grid: " + "  ".join(f"{k}={','.join(v)}" for k, v in sweep.params.items()))
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs")
    if runs:
        print(_runs_table(runs))
        print(f"\n{cmp.metric} ({cmp.mode}, ranked by {cmp.by} value):")
        print(_comparison_table(cmp))
    for note in cmp.notes:
        print(f"note: {note}")
    if cmp.best:
        best = next(s for s in cmp.scores if s.label == cmp.best)
        value = best.best if cmp.by == "best" else best.final
        step = best.best_step if cmp.by == "best" else best.final_step
        params = " ".join(f"{k}={v}" for k, v in cmp.params[cmp.best].items())
        print(
            f"best: {cmp.best} ({params or 'no params'}): {best.metric} {value:.6g} at step {step}"
        )
    if cmp.plot:
        print(f"plot: {cmp.plot}")
    return EXIT_OK


def _comparison_table(cmp: SweepComparison) -> str:
    keys = sorted({k for p in cmp.params.values() for k in p})
    rows = []
    for s in cmp.scores:
        mark = "*" if s.label == cmp.best else ""
        nums = ([fmt_num(s.best, 4), s.best_step, fmt_num(s.final, 4), s.final_step, s.points]
                if not s.error else ["-", "-", "-", "-", s.points or "-"])  # fmt: skip
        rows.append([mark + s.label, cmp.status[s.label], *[cmp.params[s.label].get(k, "") for k in keys],
                     *nums, s.error])  # fmt: skip
    head = ["RUN", "STATUS", *keys, "BEST", "AT STEP", "FINAL", "AT STEP", "POINTS", "NOTE"]
    return render_table(head, rows)


def _logs(conn, args: argparse.Namespace) -> int:
    r = db.get_run(conn, args.name)
    if r.log_path is None:
        raise InputError(f"run {r.name!r} is {r.status} and has no log yet")
    path = Path(r.log_path)
    if not args.follow:
        text = path.read_text(errors="replace") if path.exists() else ""
        if args.tail is not None:
            text = "".join(text.splitlines(keepends=True)[-args.tail :])
        if args.format == "json":
            print_json({"run": r.name, "status": r.status, "log_path": str(path), "text": text})
        else:
            sys.stdout.write(text)
        return EXIT_OK
    offset, chunks = 0, []
    while True:
        ended = r.status in TERMINAL
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            offset += len(data)
            if data:
                if args.format == "json":
                    chunks.append(data.decode(errors="replace"))
                else:
                    sys.stdout.write(data.decode(errors="replace"))
                    sys.stdout.flush()
        if ended:
            break
        time.sleep(0.2 if r.backend == "local" else 5.0)  # squeue is a controller RPC
        control.reconcile_run(conn, r)
        r = db.get_run(conn, r.name)
    if args.format == "json":
        print_json(
            {"run": r.name, "status": r.status, "log_path": str(path), "text": "".join(chunks)}
        )
    return EXIT_OK


def _run(conn, args: argparse.Namespace) -> int:
    if args.verb == "create":
        [spec] = _checked([{"name": args.name, "command": args.command, **_spec_extras(args)}])
        return _created(conn, args, [db.create_run(conn, sweep=args.sweep, **spec)])
    if args.verb == "list":
        runs = db.list_runs(conn, sweep=args.sweep, statuses=args.status)
        if args.format == "json":
            print_json(runs)
        else:
            print(_runs_table(runs))
        return EXIT_OK
    if args.verb == "show":
        r = db.get_run(conn, args.name)
        if args.format == "json":
            print_json(r)
        else:
            print(_show_run(r))
        return EXIT_OK
    if args.verb == "logs":
        return _logs(conn, args)
    if args.verb == "cancel":
        ok, note = control.cancel_run(conn, args.name, args.grace)
        r = db.get_run(conn, args.name)
        if args.format == "json":
            print_json({"run": r, "cancelled": ok, "note": note})
        else:
            print(f"{r.name}: {note}")
        return EXIT_OK if ok else EXIT_FAILED
    for name in args.names:
        db.get_run(conn, name)
    return _results(args, control.start_runs(conn, args.names, _start_options(args)))


def _plan(conn, args: argparse.Namespace) -> int:
    if args.verb == "save":
        parsed = plans.read_plan(args.path)
        name = args.name or plans.slug(parsed.title)
        plan = db.save_plan(
            conn,
            name,
            parsed.title,
            parsed.goal,
            parsed.markdown,
            str(args.path.resolve()),
            args.sweep,
        )
        if args.format == "json":
            print_json(plan)
        else:
            linked = f", linked to {', '.join(plan.sweeps)}" if plan.sweeps else ""
            print(f"plan {plan.name} saved: {plan.title!r}{linked}")
        return EXIT_OK
    if args.verb == "list":
        items = db.list_plans(conn)
        if args.format == "json":
            print_json(items)
        else:
            print(
                render_table(
                    ["NAME", "TITLE", "GOAL", "SWEEPS", "UPDATED"],
                    [(p.name, p.title, p.goal, ",".join(p.sweeps), p.updated) for p in items],
                )
            )
        return EXIT_OK
    plan = db.get_plan(conn, args.name)
    if args.format == "json":
        print_json(plan)
    else:
        print(
            f"plan {plan.name}: {plan.title}\ngoal: {plan.goal or '-'}\n"
            f"sweeps: {', '.join(plan.sweeps) or '-'}\nsource: {plan.source or '-'}\n"
        )
        print(plan.markdown)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.db is None:
        conn = db.connect(db.default_db_path())
    else:
        conn = db.connect(args.db, create=args.create_db)
    try:
        control.reconcile_all(conn)
        return {"sweep": _sweep, "run": _run, "plan": _plan}[args.group](conn, args)
    finally:
        conn.close()


if __name__ == "__main__":
    run(main, PROG)
