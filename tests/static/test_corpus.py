"""Regression guard on bench/static_corpus: recall on buggy scripts, no errors on clean ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_corpus_recall_and_clean_precision() -> None:
    script = ROOT / "bench" / "static_corpus" / "evaluate.py"
    out = subprocess.run(
        [sys.executable, str(script), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    res = json.loads(out)
    assert res["recall"] >= 0.9, res["missed"]
    assert res["clean_error_findings"] == 0, res["false_positives_on_clean"]
    assert res["clean_warning_findings"] == 0, res["false_positives_on_clean"]
