"""Regression guard on bench/static_reported: cases written after publicly reported bugs (each a
small program checked as a whole) are found, and their corrected twins give no error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reported_cases_detected_and_twins_clean() -> None:
    script = ROOT / "bench" / "static_reported" / "evaluate.py"
    out = subprocess.run(
        [sys.executable, str(script), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    res = json.loads(out)
    missed = [r for r in res["rows"] if r["detected"].split("/")[0] != r["detected"].split("/")[1]]
    assert res["detection_rate"] >= 0.9, missed
    assert res["clean_error_findings"] == []
    assert res["clean_warning_findings"] == []
