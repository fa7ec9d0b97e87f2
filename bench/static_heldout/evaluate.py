"""Detection rate of the L0 analyzer on a set written blind by another engineer.

    .venv/bin/python bench/static_heldout/evaluate.py [--root DIR] [--json OUT]

``--root bench/static_heldout2`` evaluates the second blind batch (29 cases, same protocol).

The 35 cases in ``buggy/`` (with corrected twins in ``clean/``) were written after public bug
reports by an engineer who did not read the analyzer or its rules (see CASES.md for the reports
and the writer's notes). A defect line carries ``# bug: ...``; the writer did not know the rule
codes, so a case counts as detected when an error- or warning-level finding of any code lands on
one of its marked lines (info findings are listed, not counted); a looser count takes an
error/warning anywhere in the case whose (file, code) the corrected twin does not give (the
finding points at the call site rather than the helper, say). Each clean twin is checked the
same way: any error there is a false alarm, warnings are listed. Prints a table and writes JSON
to ``bench/results/static_heldout.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from toolkit.static.check import check_paths
from toolkit.static.config import StaticConfig

HERE = Path(__file__).parent
BUG_RE = re.compile(r"#\s*bug:")


def marks(case: Path) -> set[tuple[str, int]]:
    out = set()
    for f in sorted(case.rglob("*.py")):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if BUG_RE.search(line):
                out.add((f.name, i))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--root", type=Path, default=HERE, help="folder holding buggy/ and clean/ (default: here)"
    )
    ap.add_argument("--json", type=Path, default=None, help="default: bench/results/<root>.json")
    args = ap.parse_args()
    root = args.root
    if not (root / "buggy").is_dir() or not (root / "clean").is_dir():
        raise SystemExit(f"--root {root}: expected a folder with buggy/ and clean/ case folders")
    args.json = args.json or HERE.parent / "results" / f"{root.resolve().name}.json"
    rows, detected, anywhere = [], 0, 0
    clean_errors, clean_warnings = [], []
    cases = sorted(p for p in (root / "buggy").iterdir() if p.is_dir())
    for case in cases:
        want = marks(case)
        res = check_paths([case], config=StaticConfig())
        if res.parse_errors:
            raise SystemExit(f"{case}: {res.parse_errors}")
        on_mark = [f for f in res.findings if (Path(f.path).name, f.line) in want]
        hits = sorted({f.code for f in on_mark if f.severity in ("error", "warning")})
        infos = sorted({f.code for f in on_mark if f.severity == "info"})
        detected += bool(hits)
        twin = root / "clean" / case.name
        cres = check_paths([twin], config=StaticConfig())
        if cres.parse_errors:
            raise SystemExit(f"{twin}: {cres.parse_errors}")
        # Anywhere in the case: an error/warning (file, code) the corrected twin does not give.
        twin_keys = {(Path(f.path).name, f.code) for f in cres.findings}
        diff = sorted(
            {
                f.code
                for f in res.findings
                if f.severity in ("error", "warning")
                and (Path(f.path).name, f.code) not in twin_keys
            }
        )
        anywhere += bool(hits or diff)
        errs = [f for f in cres.findings if f.severity == "error"]
        warns = [f for f in cres.findings if f.severity == "warning"]
        clean_errors += [f"{case.name}/{Path(f.path).name}:{f.line} {f.code}" for f in errs]
        clean_warnings += [f"{case.name}/{Path(f.path).name}:{f.line} {f.code}" for f in warns]
        rows.append(
            {
                "case": case.name,
                "detected": bool(hits),
                "codes": hits,
                "anywhere": diff,
                "info_on_mark": infos,
                "clean_errors": len(errs),
                "clean_warnings": len(warns),
            }
        )
    print(f"{'case':44} {'on line':8} {'codes':14} {'in case':14} {'twin err':9} twin warn")
    for r in rows:
        print(
            f"{r['case']:44} {'yes' if r['detected'] else 'NO':8} {','.join(r['codes']) or '-':14}"
            f" {','.join(r['anywhere']) or '-':14} {r['clean_errors']:<9} {r['clean_warnings']}"
        )
    n = len(rows)
    print(
        f"on a marked line: {detected}/{n} ({100 * detected / n:.0f}%); anywhere in the case"
        f" and not in its twin: {anywhere}/{n} ({100 * anywhere / n:.0f}%); clean twins:"
        f" {len(clean_errors)} error(s), {len(clean_warnings)} warning(s)"
    )
    for e in clean_errors:
        print(f"  twin error: {e}")
    for w in clean_warnings:
        print(f"  twin warning: {w}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "detected": detected,
                "anywhere": anywhere,
                "cases": n,
                "rows": rows,
                "clean_errors": clean_errors,
                "clean_warnings": clean_warnings,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
