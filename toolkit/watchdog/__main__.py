"""``python -m toolkit.watchdog run [options] -- CMD ARGS...`` and ``... status RUN_DIR``.

Exit codes: 0 the run finished; 1 the watchdog stopped (a fault it must not restart, or the
restart limit) or the status is a failure; 2 usage; 128+N when the watchdog got signal N.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from toolkit.cli import (
    EXIT_OK,
    Parser,
    add_format_flag,
    non_negative_float,
    positive_float,
    positive_int,
    print_json,
    render_table,
    run,
)
from toolkit.errors import InputError
from toolkit.watchdog.policy import RestartPolicy
from toolkit.watchdog.record import RunDir, read_events, read_state

PROG = "python -m toolkit.watchdog"


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="supervise a command (after --) or a Slurm job")
    r.add_argument("--run-dir", type=Path, required=True, help="folder for events, state, logs")
    r.add_argument("--cwd", type=Path, help="working directory of the command")
    r.add_argument("--checkpoints", help="glob of checkpoint files or folders")
    r.add_argument(
        "--checkpoint-dir", type=Path, help="folder holding HF-style checkpoint-N entries"
    )
    r.add_argument(
        "--required-file",
        action="append",
        default=[],
        help="file a checkpoint folder must hold to count as complete (repeatable)",
    )
    r.add_argument(
        "--resume",
        dest="resume_template",
        help="arguments appended on restart, e.g. '--resume {checkpoint}'",
    )
    r.add_argument(
        "--resume-env", help="environment variable set to the checkpoint path on restart"
    )
    r.add_argument("--max-restarts", type=positive_int("--max-restarts"), default=5)
    r.add_argument(
        "--window",
        type=positive_float("--window"),
        default=3600.0,
        help="seconds over which --max-restarts counts (default 3600)",
    )
    r.add_argument(
        "--backoff",
        type=non_negative_float("--backoff"),
        default=1.0,
        help="first back-off, seconds (doubles)",
    )
    r.add_argument(
        "--max-backoff",
        type=non_negative_float("--max-backoff"),
        default=300.0,
        help="back-off cap, seconds",
    )
    r.add_argument(
        "--hang-timeout",
        type=positive_float("--hang-timeout"),
        help="seconds without log output or checkpoint (default: 10x median step time, >= --hang-min)",
    )
    r.add_argument("--hang-min", type=positive_float("--hang-min"), default=60.0)
    r.add_argument("--hang-factor", type=positive_float("--hang-factor"), default=10.0)
    r.add_argument(
        "--startup-grace",
        type=positive_float("--startup-grace"),
        default=600.0,
        help="seconds allowed before the second logged step (default 600)",
    )
    r.add_argument(
        "--poll", type=positive_float("--poll"), default=0.2, help="poll interval, seconds"
    )
    r.add_argument(
        "--kill-grace",
        type=non_negative_float("--kill-grace"),
        default=5.0,
        help="seconds between SIGTERM and SIGKILL to the process group",
    )
    r.add_argument("--eval-cmd", help="run in the background on each new checkpoint ({checkpoint})")
    r.add_argument(
        "--baseline",
        type=Path,
        help="baseline metrics: a log, or JSON/YAML {metric: {step: value}}",
    )
    r.add_argument(
        "--tolerance",
        type=positive_float("--tolerance"),
        default=0.1,
        help="relative difference that raises a baseline alert (default 0.1)",
    )
    r.add_argument(
        "--no-stop-on-nan", action="store_true", help="do not stop a run that logs a NaN loss"
    )
    r.add_argument(
        "--expect-steps",
        type=positive_int("--expect-steps"),
        help="the last step the run logs (step=N); an exit 0 before it is 'exited-early', not finished",
    )
    r.add_argument(
        "--final-checkpoint",
        help="path or glob of the checkpoint a finished run has written; exit 0 without it is 'exited-early'",
    )
    r.add_argument("--slurm-job", help="supervise this Slurm job id instead of a command")
    r.add_argument(
        "--slurm-log", type=Path, help="the Slurm job's output file (classification, hangs)"
    )
    s = sub.add_parser("status", help="print the state and the last events of a run folder")
    s.add_argument("run_dir", type=Path)
    s.add_argument("--last", type=positive_int("--last"), default=10)
    add_format_flag(s)
    return parser


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    own, cmd = _split(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    if args.verb == "status":
        return status(args)
    policy = RestartPolicy(args.max_restarts, args.window, args.backoff, args.max_backoff)
    if args.slurm_job:
        from toolkit.watchdog.slurm import SlurmOptions, supervise

        if cmd:
            raise InputError("--slurm-job supervises a submitted job; give no command after --")
        return supervise(
            SlurmOptions(
                args.run_dir,
                args.slurm_job,
                args.slurm_log,
                args.checkpoints,
                args.checkpoint_dir,
                tuple(args.required_file),
                policy,
                args.poll,
                args.hang_timeout,
                args.startup_grace,
                args.hang_min,
                args.hang_factor,
            )
        )
    if not cmd:
        raise InputError("run needs a command after --, e.g. run --run-dir R -- python train.py")
    if args.baseline is not None and not args.baseline.is_file():
        raise InputError(f"--baseline: {args.baseline} is missing; expected a file")
    from toolkit.watchdog.supervisor import Options
    from toolkit.watchdog.supervisor import run as supervise_local

    return supervise_local(
        Options(
            run_dir=args.run_dir,
            cmd=cmd,
            cwd=args.cwd,
            checkpoint_glob=args.checkpoints,
            checkpoint_dir=args.checkpoint_dir,
            required_files=tuple(args.required_file),
            resume_template=args.resume_template,
            resume_env=args.resume_env,
            policy=policy,
            hang_timeout_s=args.hang_timeout,
            startup_grace_s=args.startup_grace,
            hang_factor=args.hang_factor,
            hang_min_s=args.hang_min,
            poll_s=args.poll,
            kill_grace_s=args.kill_grace,
            eval_cmd=args.eval_cmd,
            baseline=args.baseline,
            tolerance=args.tolerance,
            stop_on_nan=not args.no_stop_on_nan,
            expect_steps=args.expect_steps,
            final_checkpoint=args.final_checkpoint,
        )
    )


def status(args) -> int:
    """Print the persisted state and the last events; exit 1 when the run stopped on a failure."""
    rd = RunDir(args.run_dir)
    state = read_state(rd)
    if state is None:
        raise InputError(f"{args.run_dir} has no state.json; expected a watchdog run folder")
    events = read_events(rd, args.last)
    if args.format == "json":
        print_json({"state": state, "events": events})
    else:
        diag = state.get("last_diagnosis") or {}
        print(
            f"status: {state.get('status')}   attempts: {state.get('attempt')}   "
            f"restarts: {len(state.get('restart_times', []))}"
        )
        print(
            f"resumed from: {state.get('checkpoint') or 'none'}   "
            f"latest complete at stop: {state.get('latest_checkpoint') or '-'}"
        )
        if diag:
            print(
                f"last diagnosis: {diag.get('cls')}/{diag.get('subclass')} at step {diag.get('step')}: "
                f"{diag.get('meaning')}"
            )
        rows = []
        for ev in events:
            detail = {k: v for k, v in ev.items() if k not in ("time", "event")}
            text = ", ".join(
                f"{k}={v}" for k, v in detail.items() if not isinstance(v, dict | list)
            )
            rows.append(
                (
                    time.strftime("%H:%M:%S", time.gmtime(ev.get("time", 0))),
                    ev.get("event"),
                    text[:100],
                )
            )
        print(render_table(("time", "event", "detail"), rows))
    return 1 if state.get("status") == "stopped" else EXIT_OK


if __name__ == "__main__":
    run(main, PROG)
