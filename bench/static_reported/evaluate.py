"""Detection rate of the L0 analyzer on cases written after publicly reported bugs.

    .venv/bin/python bench/static_reported/evaluate.py [--json]

Each ``buggy/CASE/`` folder is checked as one program (``check_paths``, the way ``python -m
toolkit.static.check CASE/`` runs); its expected findings are the ``# expect: CODE`` markers.
A defect counts as detected when a finding with that code lands on that file and line. Each
``clean/CASE/`` twin is checked the same way; any error-level finding there is a false alarm,
warnings are listed. Prints a table, writes ``bench/results/static_reported.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from toolkit.static.check import check_paths
from toolkit.static.config import StaticConfig

HERE = Path(__file__).parent
RESULTS = HERE.parent / "results"
EXPECT_RE = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")


def expectations(case: Path) -> set[tuple[str, int, str]]:
    out = set()
    for f in sorted(case.rglob("*.py")):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            m = EXPECT_RE.search(line)
            if m:
                out |= {(f.name, i, c.strip()) for c in m.group(1).split(",") if c.strip()}
    return out


def main() -> int:
    rows, detected, total = [], 0, 0
    clean_errors, clean_warnings = [], []
    for case in sorted(p for p in (HERE / "buggy").iterdir() if p.is_dir()):
        want = expectations(case)
        res = check_paths([case], config=StaticConfig())
        got = {(Path(f.path).name, f.line, f.code) for f in res.findings}
        hit = want & got
        total += len(want)
        detected += len(hit)
        twin = HERE / "clean" / case.name
        cres = check_paths([twin], config=StaticConfig()) if twin.is_dir() else None
        errs = [f for f in (cres.findings if cres else []) if f.severity == "error"]
        warns = [f for f in (cres.findings if cres else []) if f.severity == "warning"]
        clean_errors += [
            f"{case.name}/{Path(f.path).name}:{f.line} {f.code} {f.message}" for f in errs
        ]
        clean_warnings += [
            f"{case.name}/{Path(f.path).name}:{f.line} {f.code} {f.message}" for f in warns
        ]
        codes = ",".join(sorted({c for _, _, c in want}))
        rows.append((case.name, codes, f"{len(hit)}/{len(want)}", len(errs), len(warns)))
    head = ("case", "expected", "detected", "clean errors", "clean warnings")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    result = {
        "cases": len(rows),
        "defects": total,
        "detected": detected,
        "detection_rate": round(detected / total, 3) if total else 0.0,
        "clean_error_findings": clean_errors,
        "clean_warning_findings": clean_warnings,
        "rows": [dict(zip(head, r, strict=True)) for r in rows],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "static_reported.json").write_text(json.dumps(result, indent=1))
    if "--json" in sys.argv:
        print(json.dumps(result, indent=1))
        return 0
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
    print(
        f"detected {detected}/{total} ({result['detection_rate']:.0%}); "
        f"clean twins: {len(clean_errors)} error(s), {len(clean_warnings)} warning(s)"
    )
    for line in clean_errors + clean_warnings:
        print("  clean:", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
