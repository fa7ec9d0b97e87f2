"""``python -m toolkit.static.check PATH... [--format table|json|sarif] [--select] [--ignore]
[--fail-on error|warning|info] [--spec]``.

Every finding is reported; the exit status is for CI. Exit 1 when a finding at or above
``--fail-on`` (default ``error``: warnings and info alone exit 0), a parse error, or a spec
deviation is reported; 0 otherwise; 2 on usage error.
"""

from __future__ import annotations

import gc
import os
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.cli import EXIT_FAILED, EXIT_OK, Parser, print_json, run
from toolkit.errors import InputError
from toolkit.static import forked
from toolkit.static.catalogue import SEVERITIES
from toolkit.static.config import StaticConfig, load_config
from toolkit.static.engine import ModuleFacts, iter_py_files, parse_facts, run_rules
from toolkit.static.output import CheckResult, render_text, to_sarif
from toolkit.static.program import Program, module_names, summarize
from toolkit.static.versions import versions_for

PROG = "python -m toolkit.static.check"


def _split(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(c.strip().upper() for c in v.split(",") if c.strip())
    return out


def validate_codes(codes: Iterable[str], flag: str) -> None:
    from toolkit.static.catalogue import all_rules

    known = [r.code for r in all_rules()]
    for c in codes:
        if not any(k == c or k.startswith(c) for k in known):
            raise InputError(f"{flag}: unknown rule code {c!r}; see python -m toolkit.static.rules")


KEEP_BYTES = 24_000_000  # source kept parsed between the two phases; beyond it, parse again
PARALLEL_MIN_FILES = 48  # fewer files than this: one process (forking costs more than it saves)


@dataclass
class _Part:
    """One process's files: phase 1 state kept for phase 2."""

    files: list[Path] = field(default_factory=list)
    kept: dict[Path, ModuleFacts] = field(default_factory=dict)
    sources: dict[Path, str] = field(default_factory=dict)
    parse_errors: list[dict[str, str]] = field(default_factory=list)
    checked: int = 0
    budget: int = KEEP_BYTES  # source bytes whose parsed facts may still be kept
    done: list[ModuleFacts] = field(default_factory=list)  # phase 2 went through them


def _phase1_file(part: _Part, f: Path, roots: list[Path]):
    """Parse and summarize one file for ``part`` (its summary, or None); keep the parsed
    facts while ``part.budget`` lasts, else only the source (parsed again in phase 2)."""
    part.files.append(f)
    part.checked += 1
    try:
        source = f.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        part.parse_errors.append({"path": str(f), "error": f"{type(exc).__name__}: {exc}"})
        return None
    facts, err = parse_facts(source, str(f))
    if facts is None:
        part.parse_errors.append({"path": str(f), "error": err or "parse error"})
        return None
    summary = None
    try:
        summary = summarize(facts, module_names(f, roots))
    except RecursionError:
        pass  # the rules will say so in phase 2
    if len(source) <= part.budget:
        part.budget -= len(source)
        part.kept[f] = facts
    else:
        part.sources[f] = source
    return summary


def _phase1(part: _Part, files: list[Path], roots: list[Path]) -> list:
    """Phase 1 over ``files`` in order (one process)."""
    out = []
    for f in files:
        summary = _phase1_file(part, f, roots)
        if summary is not None:
            out.append(summary)
    return out


def _phase2(
    part: _Part,
    program: Program,
    sel: list[str] | None,
    ign: list[str],
    cfg: StaticConfig,
    skip: frozenset[Path] = frozenset(),
    moved_in: Sequence[Path] = (),
    roots: Sequence[Path] = (),
) -> tuple[list, list[dict[str, str]]]:
    """The rules over ``part``'s files but ``skip``, and over ``moved_in`` (files another
    process parsed and kept: parsed and summarized again here, as that process has them)."""
    findings: list = []
    errors: list[dict[str, str]] = []
    for f in part.files:
        if f in skip:
            continue
        facts = part.kept.pop(f, None)
        if facts is not None:
            # kept facts stay referenced until the part goes: freeing a tree costs about a
            # fifth of parsing it, and a worker process exits without freeing anything
            part.done.append(facts)
        if facts is None:
            if f not in part.sources:
                continue
            facts, _ = parse_facts(part.sources.pop(f), str(f))
            if facts is None:
                continue
        _rules(facts, f, program, sel, ign, cfg, findings, errors)
    for f in moved_in:
        try:
            facts, _ = parse_facts(f.read_bytes().decode("utf-8"), str(f))
        except (OSError, UnicodeDecodeError) as exc:
            errors.append({"path": str(f), "error": f"{type(exc).__name__}: {exc}"})
            continue
        if facts is None:
            continue
        try:
            summarize(facts, module_names(f, list(roots)))  # the state phase 1 left it in
        except RecursionError:
            pass
        part.done.append(facts)
        _rules(facts, f, program, sel, ign, cfg, findings, errors)
    return findings, errors


def _rules(facts, f: Path, program: Program, sel, ign, cfg, findings, errors) -> None:
    if program.reaches(facts):
        facts.reset(program)  # rebuild its scopes with the other files' summaries
    else:
        facts.program = program
    facts.env = versions_for(f.parent.resolve())
    extra = cfg.ignored_for(f) if cfg.per_file_ignores else []
    found, err = run_rules(facts, sel, ign + extra)
    if err:
        errors.append({"path": str(f), "error": err})
    findings.extend(found)


# Phase 2 CPU per AST node, relative to a library file (0.36 us): run code (pyflakes,
# run-only rules, the library sources LC003 reads) costs ~17.5x, a file with a backward pass
# or no_grad blocks (event scopes) ~3.25x; parsing and summarizing again a file another
# process kept costs ~8.3x; every file costs ~920 nodes' worth on top (least-squares fit per
# file kind on torch/nn + torch/_dynamo, one process: 0.36, 6.3, 1.17, 3.0 us per node,
# 0.33 ms per file).
RUN_COST, GRAD_COST, MOVE_COST, FILE_COST = 17.5, 3.25, 8.3, 920


def _balance(entries, owners: dict[int, int], program: Program, n: int):
    """Which kept files change process for phase 2 (position -> process) so that the
    processes' predicted phase-2 work evens out. Every process computes the same plan from
    the same summaries."""
    cost: dict[int, float] = {}
    load = [0.0] * n
    for pos, summary, _kept in entries:
        run = summary.is_run or summary.path in program.run_closure
        per_node = RUN_COST if run else GRAD_COST if summary.grad_ctx else 1
        cost[pos] = FILE_COST + summary.size * per_node
        load[owners[pos]] += cost[pos]
    size = {pos: summary.size for pos, summary, _kept in entries}
    movable = {w: [pos for pos, _s, kept in entries if kept and owners[pos] == w] for w in range(n)}
    moved: dict[int, int] = {}
    while True:
        h = max(range(n), key=load.__getitem__)
        lo = min(range(n), key=load.__getitem__)
        best, best_max = None, load[h]
        for pos in movable[h]:
            c = cost[pos]
            new_max = max(load[h] - c, load[lo] + c + size[pos] * MOVE_COST)
            if new_max < best_max:
                best, best_max = pos, new_max
        if best is None:
            return moved
        movable[h].remove(best)
        load[h] -= cost[best]
        load[lo] += cost[best] + size[best] * MOVE_COST
        moved[best] = lo


_NEVER_FREED: list = []  # in a worker process: objects left for os._exit rather than freed


def _worker(
    files, me, n, roots, sel, ign, cfg, budget, down: int, up: int, queue: forked.Queue
) -> None:  # pragma: no cover - child
    """Phase 1 on files pulled one at a time from the shared ``queue`` (largest first:
    processes finish together), then phase 2 on the files this process parsed, give or take
    the few that even out the processes' predicted phase-2 work."""
    try:
        part = _Part(budget=budget)
        own = []  # (position in files, summary, facts kept)
        while (pos := queue.take()) is not None:
            f = files[pos]
            summary = _phase1_file(part, f, roots)
            if summary is not None:
                own.append((pos, summary, f in part.kept))
        # phase 1 went through: the summaries go to the parent as bytes, passed on as they are
        forked.send_bytes(up, pickle.dumps(own, protocol=pickle.HIGHEST_PROTOCOL))
        owners: dict[int, int] = {}
        everything = []
        for w in range(n):  # every process's summaries, in process order
            got = own if w == me else pickle.loads(forked.recv_bytes(down))
            everything.extend(got)
            owners.update((pos, w) for pos, _s, _k in got)
        everything.sort(key=lambda t: t[0])  # file order, as one process would have them
        program = Program([summary for _, summary, _k in everything])
        _NEVER_FREED.append((part, program, everything))  # exits without tearing these down
        moved = _balance(everything, owners, program, n)
        skip = frozenset(files[pos] for pos in moved if owners[pos] == me)
        moved_in = [files[pos] for pos, w in sorted(moved.items()) if w == me]
        findings, errors = _phase2(part, program, sel, ign, cfg, skip, moved_in, roots)
        forked.send(up, (findings, part.parse_errors + errors, part.checked))
    except BaseException as exc:  # never leave the parent waiting
        forked.send(up, _Failed(exc))


@dataclass
class _Failed:
    """A worker's exception, sent to the parent in place of its answer."""

    exc: BaseException


def _warm_up() -> None:
    """Before forking: load what every worker would otherwise load on its own (the rule
    modules, the installed versions of the libraries version-aware rules ask about)."""
    from toolkit.static.catalogue import all_rules
    from toolkit.static.versions import PACKAGES, installed

    all_rules()
    for name in PACKAGES:
        installed(name)


def _sizes(files: list[Path]) -> list[int]:
    out = []
    for f in files:
        try:
            out.append(f.stat().st_size)
        except OSError:
            out.append(0)
    return out


def _parallel(files, roots, sel, ign, cfg, jobs: int) -> CheckResult | None:
    """Both phases in ``jobs`` forked processes; None where fork is unavailable."""
    _warm_up()
    sizes = _sizes(files)
    work = sorted(range(len(files)), key=lambda i: -sizes[i])  # largest first, ties in order
    budget = KEEP_BYTES // jobs

    def target(me: int, down: int, up: int, queue: forked.Queue) -> None:  # pragma: no cover
        _worker(files, me, jobs, roots, sel, ign, cfg, budget, down, up, queue)

    started = forked.spawn(jobs, target)
    if started is None:
        return None
    workers, qw = started
    try:
        forked.feed(qw, work)
        blobs = []  # each process's pickled summaries, passed on as they are (never unpickled)
        for w in workers:
            blobs.append(forked.recv_bytes(w.from_child))
        for i, w in enumerate(workers):
            for j, blob in enumerate(blobs):
                if i != j:  # a process keeps its own summaries
                    forked.send_bytes(w.to_child, blob)
        answers = []
        for w in workers:
            r = forked.recv(w.from_child)
            if isinstance(r, _Failed):
                raise r.exc
            answers.append(r)
    except BaseException:
        forked.kill(workers)
        raise
    finally:
        forked.reap(workers)
    result = CheckResult()
    by_file: dict[str, list] = {}
    for findings, errors, checked in answers:
        for fd in findings:
            by_file.setdefault(fd.path, []).append(fd)
        result.parse_errors.extend(errors)
        result.files_checked += checked
    for f in files:
        result.findings.extend(by_file.get(str(f), []))
    order = {str(f): i for i, f in enumerate(files)}
    result.parse_errors.sort(key=lambda e: order.get(e["path"], 0))
    return result


def check_paths(
    paths: Sequence[Path],
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    config: StaticConfig | None = None,
    jobs: int | None = None,
) -> CheckResult:
    """Analyze files and directories (recursing over ``*.py``) as one program; never raises on
    file content. Phase 1 parses and summarizes every file (call graph, per-function facts);
    phase 2 runs the rules with those facts in reach. ``jobs``: processes (default: one per
    CPU, at most 4, from 48 files up)."""
    cfg = config or StaticConfig()
    sel = select if select is not None else cfg.select
    ign = list(ignore or []) + list(cfg.ignore)
    roots = [Path(p) for p in paths]
    files = list(iter_py_files(paths))
    if jobs is None:
        jobs = min(os.cpu_count() or 1, 4) if len(files) >= PARALLEL_MIN_FILES else 1
    enabled = gc.isenabled()
    gc.disable()  # ASTs are acyclic: the collector only costs time while trees accumulate
    try:
        if jobs > 1:
            res = _parallel(files, roots, sel, ign, cfg, jobs)
            if res is not None:
                return res
        part = _Part()
        program = Program(_phase1(part, files, roots))
        findings, errors = _phase2(part, program, sel, ign, cfg)
        result = CheckResult(findings, part.checked, part.parse_errors)
        if errors:
            order = {str(f): i for i, f in enumerate(files)}
            result.parse_errors = sorted(
                part.parse_errors + errors, key=lambda e: order.get(e["path"], 0)
            )
        return result
    finally:
        if enabled:
            gc.enable()


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    p.add_argument("paths", nargs="+", type=Path, help="files or directories (recursing over *.py)")
    p.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    p.add_argument(
        "--select", action="append", help="only these codes or prefixes (comma-separated)"
    )
    p.add_argument(
        "--ignore", action="append", help="skip these codes or prefixes (comma-separated)"
    )
    p.add_argument(
        "--spec", type=Path, help="SPEC.yaml: what the user asked for (instruction compliance)"
    )
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="error",
        help="lowest severity that makes the exit status 1 (default: error; warnings alone exit 0)",
    )
    p.add_argument(
        "--no-config", action="store_true", help="ignore [tool.labcoat.static] in pyproject.toml"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for path in args.paths:
        if not path.exists():
            raise InputError(
                f"{path}: no such file or directory; expected a .py file or a directory"
            )
    select, ignore = _split(args.select), _split(args.ignore)
    validate_codes(select or [], "--select")
    validate_codes(ignore or [], "--ignore")
    cfg = StaticConfig() if args.no_config else load_config(args.paths[0])
    result = check_paths(args.paths, select, ignore, cfg)
    compliance = None
    if args.spec is not None:
        from toolkit.static.compliance import check_compliance, load_spec, render_compliance

        spec = load_spec(args.spec)
        compliance = check_compliance(spec, list(iter_py_files(args.paths)))
    if args.format == "json":
        data = result.as_dict()
        if compliance is not None:
            data["compliance"] = compliance.as_dict()
        print_json(data)
    elif args.format == "sarif":
        sarif = to_sarif(result)
        if compliance is not None:
            from toolkit.static.compliance import sarif_results

            sarif["runs"][0]["results"].extend(sarif_results(compliance))
        print_json(sarif)
    else:
        print(render_text(result))
        if compliance is not None:
            print()
            print(render_compliance(compliance))
    failing = SEVERITIES[: SEVERITIES.index(args.fail_on) + 1]
    failed = bool(result.parse_errors) or any(f.severity in failing for f in result.findings)
    if compliance is not None and compliance.deviations:
        failed = True
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    run(main, PROG)
