"""``python -m toolkit.static.check PATH... [--format table|json|sarif] [--select] [--ignore]
[--fail-on error|warning|info] [--spec]``.

Every finding is reported; the exit status is for CI. Exit 1 when a finding at or above
``--fail-on`` (default ``error``: warnings and info alone exit 0), a parse error, or a spec
deviation is reported; 0 otherwise; 2 on usage error.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from pathlib import Path

from toolkit.cli import EXIT_FAILED, EXIT_OK, Parser, print_json, run
from toolkit.errors import InputError
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


def check_paths(
    paths: Sequence[Path],
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    config: StaticConfig | None = None,
) -> CheckResult:
    """Analyze files and directories (recursing over ``*.py``) as one program; never raises on
    file content. Phase 1 parses and summarizes every file (call graph, per-function facts);
    phase 2 runs the rules with those facts in reach."""
    cfg = config or StaticConfig()
    sel = select if select is not None else cfg.select
    ign = list(ignore or []) + list(cfg.ignore)
    result = CheckResult()
    roots = [Path(p) for p in paths]
    files = list(iter_py_files(paths))
    sources: dict[Path, str] = {}
    kept: dict[Path, ModuleFacts] = {}
    summaries = []
    budget = KEEP_BYTES
    enabled = gc.isenabled()
    gc.disable()  # ASTs are acyclic: the collector only costs time while trees accumulate
    try:
        for f in files:
            result.files_checked += 1
            try:
                source = f.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                result.parse_errors.append(
                    {"path": str(f), "error": f"{type(exc).__name__}: {exc}"}
                )
                continue
            facts, err = parse_facts(source, str(f))
            if facts is None:
                result.parse_errors.append({"path": str(f), "error": err or "parse error"})
                continue
            try:
                summaries.append(summarize(facts, module_names(f, roots)))
            except RecursionError:
                pass  # the rules will say so in phase 2
            if len(source) <= budget:
                budget -= len(source)
                kept[f] = facts
            else:
                sources[f] = source
        program = Program(summaries)
        for f in files:
            facts = kept.pop(f, None)
            if facts is None:
                if f not in sources:
                    continue
                facts, _ = parse_facts(sources.pop(f), str(f))
                if facts is None:
                    continue
            if program.reaches(facts):
                facts.reset(program)  # rebuild its scopes with the other files' summaries
            else:
                facts.program = program
            facts.env = versions_for(f.parent.resolve())
            extra = cfg.ignored_for(f) if cfg.per_file_ignores else []
            findings, err = run_rules(facts, sel, ign + extra)
            if err:
                result.parse_errors.append({"path": str(f), "error": err})
            result.findings.extend(findings)
    finally:
        if enabled:
            gc.enable()
    return result


def main(argv: Sequence[str] | None = None) -> int:
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
    args = p.parse_args(argv)
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
