"""sweep show compares a real 2x2 sweep run locally: each run's log read with toolkit.logs,
the metric tabled, the best run named, the curves plotted together."""

from __future__ import annotations

import time
from pathlib import Path

from tests.runs.conftest import PY, cli, cli_json

TRAIN_PY = """\
import argparse, json, os
p = argparse.ArgumentParser()
p.add_argument("--lr")
p.add_argument("--wd")
a = p.parse_args()
w, out = 0.0, f"out/lr{a.lr}_wd{a.wd}"
a.lr, a.wd = float(a.lr), float(a.wd)
os.makedirs(out, exist_ok=True)
with open(f"{out}/metrics.jsonl", "w") as f:
    for step in range(60):
        w -= a.lr * (2 * (w - 3.0) + a.wd * w)
        loss = (w - 3.0) ** 2
        print(f"step={step} loss={loss:.6f}", flush=True)
        if step % 10 == 9:
            f.write(json.dumps({"step": step, "val_loss": loss + 0.05 + a.wd}) + "\\n")
"""


def test_two_by_two_sweep_names_the_best(project: Path) -> None:
    (project / "train.py").write_text(TRAIN_PY)
    cmd = f"{PY} train.py --lr {{lr}} --wd {{wd}}"
    assert cli("sweep", "grid", "--name", "s", "--param", "lr=0.01,0.1", "--param", "wd=0,0.5",
               "--command", cmd, cwd=project).returncode == 0  # fmt: skip
    assert len(cli_json("sweep", "start", "--name", "s", cwd=project)) == 4
    for _ in range(300):
        runs = cli_json("run", "list", "--sweep", "s", cwd=project)
        if all(r["status"] == "succeeded" for r in runs):
            break
        time.sleep(0.1)
    assert [r["status"] for r in runs] == ["succeeded"] * 4

    # the captured output (key=value text): train loss, the default when nothing else is logged
    res = cli_json("sweep", "show", "--name", "s", cwd=project)["comparison"]
    assert res["metric"] == "train_loss" and res["best"] == "s-lr_0.1-wd_0"
    assert all(s["points"] == 60 and not s["error"] for s in res["scores"])

    # each run's own JSONL log: val_loss, the best by final value, curves plotted together
    show = cli("sweep", "show", "--name", "s", "--log", "out/lr{lr}_wd{wd}/metrics.jsonl",
               "--by", "final", "--plot", "curves.png", cwd=project)  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert "val_loss (min, ranked by final value)" in show.stdout
    assert "best: s-lr_0.1-wd_0 (lr=0.1 wd=0): val_loss" in show.stdout
    assert (project / "curves.png").stat().st_size > 10_000
    res = cli_json("sweep", "show", "--name", "s", "--log", "out/lr{lr}_wd{wd}/metrics.jsonl",
                   cwd=project)["comparison"]  # fmt: skip
    finals = {s["label"]: s["final"] for s in res["scores"]}
    assert min(finals, key=finals.get) == res["best"] == "s-lr_0.1-wd_0"
    assert all(s["best_step"] is not None for s in res["scores"])

    # a metric nobody logged, a template naming no parameter: clear answers
    res = cli_json("sweep", "show", "--name", "s", "--metric", "bleu", cwd=project)["comparison"]
    assert res["best"] is None and "no metric 'bleu'" in res["scores"][0]["error"]
    bad = cli("sweep", "show", "--name", "s", "--log", "{nope}.jsonl", cwd=project)
    assert bad.returncode == 2 and "--log" in bad.stderr and "nope" in bad.stderr
