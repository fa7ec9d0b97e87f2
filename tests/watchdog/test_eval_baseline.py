"""Async evaluation on new checkpoints and baseline alerts, through the CLI with the real child."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.watchdog.conftest import run_watchdog

FAKE_EVAL = Path(__file__).with_name("fake_eval.py")


def test_eval_runs_in_background_on_each_new_checkpoint_and_baseline_alerts(work):
    baseline = work / "baseline.json"
    # losses of an undisturbed run (seeded), except step 4 which is far off -> one alert
    baseline.write_text(json.dumps({"loss": {"1": 9.458571, "2": 7.286173, "4": 1.0}}))
    res = run_watchdog(
        work,
        "",
        3,
        True,
        "--eval-cmd",
        f"{sys.executable} {FAKE_EVAL} {{checkpoint}} 0.6",
        "--baseline",
        str(baseline),
        "--tolerance",
        "0.05",
    )
    assert res.rc == 0, res.stderr
    done = res.of("eval_done")
    assert sorted(Path(e["checkpoint"]).name for e in done) == [
        f"checkpoint-{n}.pt" for n in (2, 4, 6, 8)
    ]
    assert all(e["returncode"] == 0 and e["metrics"]["acc"] == 0.5 for e in done)
    # supervision was not blocked: the run ended before the queued evals did
    assert res.exits()[0]["time"] < max(e["time"] for e in done)
    alerts = res.of("baseline_alert")
    assert [(a["metric"], a["step"]) for a in alerts] == [("loss", 4)]
    context = (res.run_dir / "experiment-context.md").read_text()
    assert "Baseline alerts" in context and "Evaluations" in context
