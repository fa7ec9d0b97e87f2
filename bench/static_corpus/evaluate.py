"""Recall / precision of the L0 static analyzer on this corpus.

``buggy/*.py``: realistic scripts with known defects, each marked ``# expect: CODE`` on its line.
``clean/*.py``: correct scripts; any error-level finding there is a false positive.

    .venv/bin/python bench/static_corpus/evaluate.py [--json]

Recall: expected (file, line, code) found / expected. Precision: on buggy files, findings that
match an expectation / all error+warning findings; on clean files, the count of error and
warning findings (info is advisory and not counted).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from toolkit.static.engine import analyze_source

HERE = Path(__file__).parent
EXPECT_RE = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")


def expectations(text: str) -> set[tuple[int, str]]:
    out = set()
    for i, line in enumerate(text.splitlines(), 1):
        m = EXPECT_RE.search(line)
        if m:
            out |= {(i, c.strip()) for c in m.group(1).split(",") if c.strip()}
    return out


def main() -> int:
    exp_total = found_total = 0
    tp = fp_buggy = 0
    missed, extra = [], []
    for f in sorted((HERE / "buggy").glob("*.py")):
        text = f.read_text()
        want = expectations(text)
        findings, _ = analyze_source(text, str(f))
        got = {(x.line, x.code) for x in findings}
        hit = want & got
        exp_total += len(want)
        found_total += len(hit)
        for x in findings:
            if x.severity == "info":
                continue
            if (x.line, x.code) in want:
                tp += 1
            else:
                fp_buggy += 1
                extra.append(f"{f.name}:{x.line} {x.code} {x.severity} {x.message}")
        missed += [f"{f.name}:{ln} {c}" for ln, c in sorted(want - got)]
    clean_err = clean_warn = clean_info = 0
    clean_fp = []
    clean_files = sorted((HERE / "clean").glob("*.py"))
    for f in clean_files:
        findings, _ = analyze_source(f.read_text(), str(f))
        for x in findings:
            if x.severity == "error":
                clean_err += 1
            elif x.severity == "warning":
                clean_warn += 1
            else:
                clean_info += 1
                continue
            clean_fp.append(f"{f.name}:{x.line} {x.code} {x.severity} {x.message}")
    recall = found_total / exp_total if exp_total else 1.0
    precision = tp / (tp + fp_buggy + clean_err + clean_warn) if tp else 0.0
    result = {
        "buggy_files": len(list((HERE / "buggy").glob("*.py"))),
        "clean_files": len(clean_files),
        "expected_defects": exp_total,
        "found": found_total,
        "recall": round(recall, 3),
        "precision_error_warning": round(precision, 3),
        "clean_error_findings": clean_err,
        "clean_warning_findings": clean_warn,
        "clean_info_findings": clean_info,
        "missed": missed,
        "unexpected_on_buggy": extra,
        "false_positives_on_clean": clean_fp,
    }
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            if isinstance(v, list):
                print(f"{k}: {len(v)}")
                for line in v:
                    print(f"  {line}")
            else:
                print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
