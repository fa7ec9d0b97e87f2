"""``python -m toolkit.static.rules [--format json]``: list every rule with its doc."""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.cli import EXIT_OK, Parser, add_format_flag, print_json, run

PROG = "python -m toolkit.static.rules"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    add_format_flag(p)
    p.add_argument("--select", help="only codes starting with these prefixes (comma-separated)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from toolkit.static.catalogue import all_rules

    args = build_parser().parse_args(argv)
    rules = all_rules()
    if args.select:
        prefixes = [s.strip().upper() for s in args.select.split(",") if s.strip()]
        rules = [r for r in rules if any(r.code.startswith(x) for x in prefixes)]
    if args.format == "json":
        print_json({"rules": [r.as_dict() for r in rules], "count": len(rules)})
        return EXIT_OK
    for r in rules:
        print(f"{r.code}  {r.name}  [{r.severity}]  ({', '.join(r.frameworks)})  area: {r.area}")
        print(f"    {r.doc}")
        print(f"    Fix: {r.fix}")
        print()
    by = {s: sum(1 for r in rules if r.severity == s) for s in ("error", "warning", "info")}
    print(f"{len(rules)} rules: {by['error']} error, {by['warning']} warning, {by['info']} info")
    return EXIT_OK


if __name__ == "__main__":
    run(main, PROG)
