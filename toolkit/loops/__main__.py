"""``python -m toolkit.loops autoresearch|iterate ...``: git-managed research loops."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    existing_file,
    print_json,
    render_table,
    run,
)
from toolkit.loops import autoresearch, criteria, iterate_run, judge, records, recovery

PROG = "python -m toolkit.loops"

DESCRIPTION = """\
Git-managed research loops. The agents edit; this command does the bookkeeping.

  autoresearch validate PROTOCOL   check autoresearch-protocol.md against the repo
  autoresearch init PROTOCOL       create the run branch/worktree, run the baseline, start the logs
  autoresearch brief               the researcher's brief for the next round
  autoresearch judge --strategy S --insight I
                                   compliance, train+eval under the time limit, commit or roll back
  autoresearch status              rounds, best commit and metric, plateau count
  iterate judge --criteria YAML --metrics JSON
                                   ml-iteration: per-criterion verdict, then commit / roll back
  iterate run --criteria YAML      run the criteria's commands (time budget, heartbeat, logs),
                                   read the metrics files they wrote, then judge as above

Run state and logs live in .labcoat/autoresearch/<run>/ (ignored by git; rollbacks never touch it).
Every command after init first recovers a round that was interrupted (journal round.json).
Rollbacks restore only the round's paths (never git clean / reset --hard); whatever they
overwrite or remove is copied to .labcoat/autoresearch/<run>/trash/round-N/ first.
Untracked files present at the brief (autoresearch) or at the baseline judge --no-git (iterate)
are the user's: never committed, never moved; a change to one is reported.

Exit codes:
  validate: 0 valid, 1 problems listed.  init: 0 ok, 4 baseline failed.
  judge:    0 improved (committed), 3 not improved (rolled back), 4 failed (rolled back).
  iterate judge/run: 0 commit, 5 accept_with_note (committed with a note), 3 rollback;
            run only: 4 the run failed (crashed, timed_out, stalled, metrics_missing,
            epoch_limit; rolled back; run.status in the JSON says which).
  2 usage or input error (bad protocol, dirty tree at init, no run, max rounds reached).
"""


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    areas = parser.add_subparsers(dest="area", required=True, parser_class=Parser)
    ar = areas.add_parser("autoresearch", help="single-metric autoresearch loop")
    verbs = ar.add_subparsers(dest="verb", required=True, parser_class=Parser)

    def common(p: argparse.ArgumentParser, with_run: bool = True) -> None:
        p.add_argument(
            "--repo", type=Path, default=Path("."), help="a path inside the git repo (default: .)"
        )
        if with_run:
            p.add_argument(
                "--run", default=None, help="run name (default: the last one initialised)"
            )
        add_format_flag(p)

    for name in ("validate", "init"):
        p = verbs.add_parser(name)
        p.add_argument("protocol", type=existing_file("PROTOCOL"), metavar="PROTOCOL")
        common(p, with_run=False)
    common(verbs.add_parser("brief"))
    j = verbs.add_parser("judge")
    j.add_argument("--strategy", required=True, help="what the researcher changed (one line)")
    j.add_argument("--insight", default="", help="what the researcher expects or learned")
    common(j)
    common(verbs.add_parser("status"))

    it = areas.add_parser("iterate", help="multi-criteria ml-iteration")
    iverbs = it.add_subparsers(dest="verb", required=True, parser_class=Parser)
    ij = iverbs.add_parser("judge")
    ij.add_argument("--criteria", type=existing_file("--criteria"), required=True)
    ij.add_argument("--metrics", type=existing_file("--metrics"), required=True)
    ij.add_argument("--baseline", type=existing_file("--baseline"), default=None,
                    help="metrics JSON to compare with (default: the last accepted metrics)")  # fmt: skip
    ij.add_argument("--message", default="", help="what changed (goes into the commit message)")
    ij.add_argument(
        "--no-git",
        action="store_true",
        help="report the verdict only; change nothing (the first one records the user's untracked files)",
    )
    ij.add_argument("--repo", type=Path, default=Path("."))
    add_format_flag(ij)
    ir = iverbs.add_parser("run", help="run the criteria's commands, read their metrics, judge")
    ir.add_argument("--criteria", type=existing_file("--criteria"), required=True,
                    help="review_criteria.yaml with a 'run' section (commands, time_budget_s, metrics_files)")  # fmt: skip
    ir.add_argument("--baseline", type=existing_file("--baseline"), default=None,
                    help="metrics JSON to compare with (default: the last accepted metrics)")  # fmt: skip
    ir.add_argument("--message", default="", help="what changed (goes into the commit message)")
    ir.add_argument("--no-git", action="store_true", help="run and report the verdict only; change nothing in git")  # fmt: skip
    ir.add_argument("--repo", type=Path, default=Path("."))
    add_format_flag(ir)
    return parser


def _print_round(res: judge.RoundResult, fmt: str) -> None:
    if fmt == "json":
        print_json(res)
        return
    rows = [
        ("round", res.round), ("outcome", res.outcome),
        ("metric", "none" if res.metric is None else f"{res.metric:.6g}"),
        ("best", f"{res.best:.6g} ({res.best_commit[:12]})"), ("commit", (res.commit or "")[:12] or "-"),
        ("reason", res.reason), ("changed", ", ".join(res.changed) or "-"),
    ]  # fmt: skip
    if res.rollback:
        rows += [
            (f"rollback {k}", ", ".join(v) if isinstance(v, list) else v)
            for k, v in res.rollback.items()
            if v
        ]
    rows += [("note", n) for n in res.notes]
    rows.append(("stop", res.stop or "no: continue"))
    print(render_table(("field", "value"), rows))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.area == "iterate" and args.verb == "run":
        res = iterate_run.run_iteration(
            args.criteria, args.baseline, args.repo, args.message, not args.no_git
        )
        return criteria.print_result(res, args.format)
    if args.area == "iterate":
        return criteria.main_judge(args)
    if args.verb == "validate":
        protocol, problems = autoresearch.validate(args.protocol, args.repo)
        if args.format == "json":
            print_json(
                {"protocol": str(args.protocol), "valid": not problems, "problems": problems}
            )
        elif problems:
            print(f"{args.protocol}: {len(problems)} problem(s)")
            for line in problems:
                print(f"  - {line}")
        else:
            print(f"{args.protocol}: valid (run {protocol.name!r}, branch {protocol.branch!r})")
        return EXIT_FAILED if problems else EXIT_OK
    if args.verb == "init":
        try:
            res = autoresearch.init(args.protocol, args.repo)
        except autoresearch.BaselineError as exc:
            sys.stderr.write(f"{PROG}: {exc}\n")
            return judge.EXIT_FAILED
        if args.format == "json":
            print_json(res)
        else:
            print(render_table(("field", "value"), [
                ("run", res.run), ("branch", res.branch), ("workdir", res.workdir),
                ("baseline", f"{res.baseline:.6g}"), ("commit", res.commit[:12]), ("state", res.run_dir),
                *[("note", n) for n in res.notes],
            ]))  # fmt: skip
        return EXIT_OK

    r = judge.load_run(args.repo, args.run)
    with records.run_lock(r.run_dir):
        return _run_verb(args, r)


def _run_verb(args: argparse.Namespace, r: judge.Run) -> int:
    recovered = recovery.recover(r)
    if recovered is not None:
        sys.stderr.write(f"{PROG}: recovered interrupted round {recovered.round}: {recovered.outcome}"
                         f" ({recovered.reason})\n")  # fmt: skip
    if args.verb == "brief":
        autoresearch.record_brief(r)
        text = autoresearch.brief(r)
        if args.format == "json":
            print_json({"brief": text, "status": autoresearch.status(r)})
        else:
            sys.stdout.write(text)
        return EXIT_OK
    if args.verb == "status":
        st = autoresearch.status(r)
        if args.format == "json":
            print_json(st)
        else:
            print(render_table(("field", "value"), [
                ("run", st["run"]), ("branch", st["branch"]), ("rounds", f"{st['rounds']} / {st['max_rounds']}"),
                ("baseline", f"{st['baseline']['metric']:.6g}"),
                ("best", f"{st['best']['metric']:.6g} at {st['best']['commit'][:12]} (round {st['best']['round']})"),
                ("plateau count", f"{st['plateau_count']} / {st['plateau_rounds']}"), ("stop", st["stop"] or "no"),
            ]))  # fmt: skip
            print()
            cols = ("round", "commit", "metric", "status", "best", "duration_s", "strategy")
            print(render_table(cols, [[row.get(c, "") for c in cols] for row in st["results"]]))
        return EXIT_OK
    res = judge.judge_round(r, args.strategy, args.insight)
    _print_round(res, args.format)
    return res.exit_code


if __name__ == "__main__":
    run(main, PROG)
