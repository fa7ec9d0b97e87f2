"""Run the L0 static analyzer over checkouts of real repositories and print the findings table.

    .venv/bin/python bench/static_real_repos.py NAME=PATH [NAME=PATH ...]
        [--errors] [--sample-warnings N] [--seed S] [--json OUT]

Each ``NAME=PATH`` is one repository checkout (or a sub-folder of one, e.g. peft's
``examples/``), analyzed as one program, the way ``python -m toolkit.static.check PATH`` runs
it (the checkout's own ``[tool.labcoat.static]`` is ignored). The repositories are not part of
this project: fetch them at the commits recorded in docs/benchmarks.md into a scratch folder.

Prints per repository: files, parse errors, error / warning / info counts; then every
error-level finding (``--errors``, on by default) and a reproducible random sample of warnings
(``--sample-warnings``) to judge by hand. Writes everything to ``bench/results/static_real_repos.json``
(or ``--json``). It measures; whether a finding is true is judged by reading the code.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

from toolkit.static.check import check_paths
from toolkit.static.config import StaticConfig

RESULTS = Path(__file__).parent / "results"


def parse_repo(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep:
        path, name = name, Path(name).name
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"{text}: no such directory; expected NAME=PATH of a checkout")
    return name, p


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("repos", nargs="+", help="NAME=PATH of a checkout (or just PATH)")
    ap.add_argument("--sample-warnings", type=int, default=30, help="warnings to sample (0: none)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", type=Path, default=RESULTS / "static_real_repos.json")
    args = ap.parse_args()
    rows, findings, per = [], [], {}
    total_t = 0.0
    for text in args.repos:
        name, path = parse_repo(text)
        t0 = time.perf_counter()
        res = check_paths([path], config=StaticConfig())
        dt = time.perf_counter() - t0
        total_t += dt
        sev = Counter(f.severity for f in res.findings)
        per[name] = {
            "path": str(path),
            "files": res.files_checked,
            "parse_errors": res.parse_errors,
            "seconds": round(dt, 3),
            **{s: sev.get(s, 0) for s in ("error", "warning", "info")},
        }
        rows.append(
            (
                name,
                res.files_checked,
                len(res.parse_errors),
                sev["error"],
                sev["warning"],
                sev["info"],
            )
        )
        for f in res.findings:
            rel = Path(f.path).relative_to(path) if Path(f.path).is_relative_to(path) else f.path
            findings.append(
                {
                    "repo": name,
                    "path": str(rel),
                    "line": f.line,
                    "code": f.code,
                    "severity": f.severity,
                    "message": f.message,
                }
            )
    head = ("repo", "files", "parse err", "error", "warning", "info")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)))
    tot = [sum(r[i] for r in rows) for i in range(1, len(head))]
    print("  ".join(str(v).ljust(w) for v, w in zip(["total", *tot], widths, strict=True)))
    print(f"analysis time: {total_t:.2f} s")
    by_code = Counter(f["code"] for f in findings if f["severity"] == "warning")
    print("warnings by rule: " + ", ".join(f"{c} {n}" for c, n in by_code.most_common()))
    errors = [f for f in findings if f["severity"] == "error"]
    print(f"\nerror-level findings ({len(errors)}):")
    for f in errors:
        print(f"  {f['repo']}/{f['path']}:{f['line']} {f['code']} {f['message']}")
    warnings = [f for f in findings if f["severity"] == "warning"]
    sample = []
    if args.sample_warnings and warnings:
        sample = random.Random(args.seed).sample(warnings, min(args.sample_warnings, len(warnings)))
        sample.sort(key=lambda f: (f["repo"], f["path"], f["line"]))
        print(f"\nwarning sample ({len(sample)} of {len(warnings)}, seed {args.seed}):")
        for f in sample:
            print(f"  {f['repo']}/{f['path']}:{f['line']} {f['code']} {f['message']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"repos": per, "findings": findings, "warning_sample": sample, "seconds": total_t},
            indent=1,
        )
    )
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
