"""``python -m toolkit.plan lint|rules``: check a plan for the planning skill's grounding gates."""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.cli import EXIT_FAILED, EXIT_OK, Parser, add_format_flag, print_json, render_table, run
from toolkit.plan.lint import lint_file
from toolkit.plan.rules import BY_CODE, RULES, parse_codes

PROG = "python -m toolkit.plan"

DESCRIPTION = """\
Lint an implementation or experiment plan (markdown) for the grounding gates.

  lint PLAN.md   findings: code, severity, line, message
  rules          every rule: code, name, default severity, what it demands

Steps are '### Step N: ...' or '## N. ...' headings (level 2+), else top-level numbered list
items under a heading that mentions steps/plan/procedure/phases.

Exit codes: 0 clean, 1 findings reported, 2 usage or input error (missing, non-markdown,
binary or empty file; unknown rule code).
"""


def _lint_table(path: str, findings: list) -> str:
    if not findings:
        return f"{path}: clean ({len(RULES)} rules)"
    rows = [[f.line, f.code, f.severity, BY_CODE[f.code].name, f.message] for f in findings]
    errors = sum(f.severity == "error" for f in findings)
    lines = [render_table(["line", "code", "severity", "rule", "message"], rows), ""]
    lines.append(f"{path}: {errors} error(s), {len(findings) - errors} warning(s)")
    return "\n".join(lines)


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{lint,rules}")
    lint = sub.add_parser(
        "lint",
        help="check a markdown plan; exit 1 on findings",
        description=(
            "Check PLAN.md against every rule (see `rules`).\n\n"
            "--select/--ignore take comma-separated codes or prefixes (PL00, PL013) and may\n"
            "be repeated. JSON: {file, findings: [{code, severity, line, message}], errors,\n"
            "warnings}. Exit codes: 0 clean, 1 findings, 2 usage or input error."
        ),
    )
    lint.add_argument("plan", metavar="PLAN.md", help="the plan (.md or .markdown)")
    lint.add_argument("--select", action="append", metavar="CODES", help="only these rules")
    lint.add_argument("--ignore", action="append", metavar="CODES", help="skip these rules")
    add_format_flag(lint)
    rules = sub.add_parser("rules", help="list the rules with a one-line doc each")
    add_format_flag(rules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "rules":
        if args.format == "json":
            print_json(list(RULES))
        else:
            print(render_table(["code", "name", "severity", "checks"], [
                [r.code, r.name, r.severity, r.doc] for r in RULES
            ]))  # fmt: skip
        return EXIT_OK
    select = parse_codes(args.select, "--select")
    ignore = parse_codes(args.ignore, "--ignore")
    findings = lint_file(args.plan, select, ignore)
    if args.format == "json":
        errors = sum(f.severity == "error" for f in findings)
        print_json(
            {
                "file": args.plan,
                "findings": findings,
                "errors": errors,
                "warnings": len(findings) - errors,
            }
        )
    else:
        print(_lint_table(args.plan, findings))
    return EXIT_FAILED if findings else EXIT_OK


if __name__ == "__main__":
    run(main, prog=PROG)
