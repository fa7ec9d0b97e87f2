"""logs postrun: best checkpoint by the metric (complete ones only), the next step the curves
point to, on logs and torch checkpoints written here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from toolkit.logs.__main__ import main


def write_log(path: Path, overfit: bool, steps: int = 600) -> None:
    with path.open("w") as f:
        for step in range(1, steps + 1):
            row = {"step": step, "loss": 3.0 * math.exp(-step / 80) + 0.5, "lr": 1e-3}
            if step % 50 == 0:
                rise = max(0, (step - 300) / 300) ** 2 if overfit else 0.0
                row["val_loss"] = 3.0 * math.exp(-step / (80 if overfit else 400)) + 0.8 + rise
            f.write(json.dumps(row) + "\n")


def postrun(capsys, *args: str) -> dict:
    assert main(["postrun", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_overfitting_run_keeps_the_best_complete_checkpoint(tmp_path: Path, capsys) -> None:
    log, ck = tmp_path / "train.jsonl", tmp_path / "ck"
    write_log(log, overfit=True)
    ck.mkdir()
    for step in range(100, 601, 100):
        torch.save({"w": torch.full((4,), float(step))}, ck / f"checkpoint-{step}.pt")
    with open(ck / "checkpoint-300.pt", "r+b") as fh:  # the best step, cut short: never chosen
        fh.truncate(20)
    res = postrun(
        capsys, str(log), "--checkpoints", str(ck / "*.pt"), "--plot", str(tmp_path / "p.png")
    )
    assert res["metric"] == "val_loss" and res["best_step"] == 350
    best = res["best_checkpoint"]
    assert best["step"] == 400 and best["value_step"] == 400  # 300 is better but truncated
    assert [c["complete"] for c in res["checkpoints"]].count(False) == 1
    assert res["next_step"].startswith("keep checkpoint") and "stop earlier" in res["next_step"]
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_still_improving_run_says_train_longer(tmp_path: Path, capsys) -> None:
    log = tmp_path / "train.jsonl"
    write_log(log, overfit=False)
    res = postrun(capsys, str(log))
    assert res["best_step"] == res["final_step"] == 600
    assert res["next_step"].startswith("train longer") and res["best_checkpoint"] is None


def test_unknown_metric_is_an_input_error(tmp_path: Path, capsys) -> None:
    import pytest

    from toolkit.cli import run

    log = tmp_path / "train.jsonl"
    write_log(log, overfit=False, steps=50)
    with pytest.raises(SystemExit) as exc:
        run(main, "logs", ["postrun", str(log), "--metric", "bleu"])
    assert exc.value.code == 2 and "no metric 'bleu'" in capsys.readouterr().err
