"""iterate run: the toolkit runs real commands, reads the metrics they wrote, then judges.

One repo, one real training script (gradient descent on a quadratic, written here), and the
rounds a loop meets: baseline, improvement, regression, crash, timeout, stale metrics, epoch
limit, stall. Every verdict comes from files the command wrote, never from the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from tests.loops.conftest import PY
from toolkit.loops.__main__ import main

TRAIN_PY = """\
import json, os, sys, time
sys.path.insert(0, "src")
import config
print("starting", flush=True)
time.sleep(getattr(config, "SLEEP", 0))
if getattr(config, "CRASH", False):
    raise RuntimeError("loss became nan at step 3")
epochs = int(os.environ["LABCOAT_MAX_EPOCHS"]) + getattr(config, "EXTRA_EPOCHS", 0)
w, step = 0.0, 0
os.makedirs("out", exist_ok=True)
with open("out/train.jsonl", "w") as f:
    for epoch in range(epochs):
        for _ in range(10):
            loss = (w - 3.0) ** 2
            w -= config.LR * 2 * (w - 3.0)
            f.write(json.dumps({"step": step, "epoch": epoch, "loss": loss}) + "\\n")
            step += 1
        print(f"epoch {epoch} loss {loss:.4f}", flush=True)
if not getattr(config, "SKIP_EVAL", False):
    with open("out/eval.json", "w") as f:
        json.dump({"val_loss": (w - 3.0) ** 2 + 0.01}, f)
"""

CRITERIA = f"""\
name: exp
variable_files: ["src/**"]
metrics:
  - {{name: val_loss, direction: minimize, min_delta: 1.0e-6}}
stability: {{no_nan: [loss]}}
run:
  commands:
    - {{name: train, command: "{PY} train.py"}}
  time_budget_s: {{budget}}
  heartbeat_s: 0.3
  stall_s: {{stall}}
  metrics_files: [out/eval.json, out/train.jsonl]
  max_epochs: 2
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    repo = git.Repo.init(root)
    (root / "train.py").write_text(TRAIN_PY)
    (root / "src" / "config.py").write_text("LR = 0.05\n")
    repo.git.add("-A")
    repo.git.commit("-qm", "init")
    return root


def run(root: Path, capsys, budget: float = 30, stall: float = 30) -> tuple[int, dict]:
    crit = root.parent / "criteria.yaml"
    crit.write_text(CRITERIA.replace("{budget}", str(budget)).replace("{stall}", str(stall)))
    capsys.readouterr()
    code = main(
        ["iterate", "run", "--criteria", str(crit), "--repo", str(root), "--format", "json"]
    )
    return code, json.loads(capsys.readouterr().out)


def config(root: Path, text: str) -> None:
    (root / "src" / "config.py").write_text(text)


def head_config(root: Path) -> str:
    return git.Repo(root).git.show("HEAD:src/config.py")


def test_rounds_improve_regress_crash_timeout(root: Path, capsys) -> None:
    code, res = run(root, capsys)  # baseline: nothing to compare with, nothing changed
    assert code == 5 and res["run"]["status"] == "ok", res
    assert res["run"]["epochs"] == 2 and res["run"]["metrics"]["val_loss"] > 0.1
    base = res["run"]["metrics"]["val_loss"]
    assert "out/eval.json" in res["run"]["outputs"]

    config(root, "LR = 0.2\n")  # faster descent: lower val_loss
    code, res = run(root, capsys)
    assert code == 0 and res["verdict"] == "commit", res
    assert res["run"]["metrics"]["val_loss"] < base
    assert head_config(root) == "LR = 0.2"
    committed = git.Repo(root).git.show("--stat", "HEAD")
    assert "out/" not in committed  # outputs of the run are never the change

    config(root, "LR = 0.01\n")  # slower: regression, rolled back
    code, res = run(root, capsys)
    assert code == 3 and res["verdict"] == "rollback", res
    assert (root / "src" / "config.py").read_text() == "LR = 0.2\n"

    config(root, "LR = 0.3\nCRASH = True\n")
    code, res = run(root, capsys)
    assert code == 4 and res["run"]["status"] == "crashed", res
    cmd = res["run"]["commands"][0]
    assert cmd["exit_code"] == 1 and "loss became nan" in cmd["reason"]
    assert "loss became nan" in Path(cmd["log"]).read_text()
    assert (root / "src" / "config.py").read_text() == "LR = 0.2\n"

    config(root, "LR = 0.3\nSLEEP = 60\n")
    code, res = run(root, capsys, budget=1.5)
    assert code == 4 and res["run"]["status"] == "timed_out", res
    assert res["run"]["commands"][0]["duration_s"] < 10
    assert (root / "src" / "config.py").read_text() == "LR = 0.2\n"
    assert (root / "out" / "eval.json").exists()  # the run's outputs are never removed


def test_stale_metrics_and_epoch_limit(root: Path, capsys) -> None:
    assert run(root, capsys)[0] == 5
    config(root, "LR = 0.3\nSKIP_EVAL = True\n")  # out/eval.json left from the last run
    code, res = run(root, capsys)
    assert code == 4 and res["run"]["status"] == "metrics_missing", res
    assert "not written by this run" in res["criteria"][0]["message"]

    config(root, "LR = 0.3\nEXTRA_EPOCHS = 1\n")
    code, res = run(root, capsys)
    assert code == 4 and res["run"]["status"] == "epoch_limit", res
    assert res["run"]["epochs"] == 3 and "allows 2" in res["criteria"][0]["message"]


def test_heartbeat_and_stall(root: Path, capsys) -> None:
    config(root, "LR = 0.3\nSLEEP = 60\n")
    crit = root.parent / "criteria.yaml"
    crit.write_text(CRITERIA.replace("{budget}", "30").replace("{stall}", "1.2"))
    code = main(["iterate", "run", "--criteria", str(crit), "--repo", str(root), "--no-git"])
    out = capsys.readouterr()
    assert code == 4
    assert "stalled" in out.out and "[labcoat heartbeat] train:" in out.err
    beat = next((root / ".labcoat").rglob("heartbeat.json"))
    assert json.loads(beat.read_text())["last_line"] == "starting"


def test_bad_run_section_is_an_input_error(root: Path, capsys) -> None:
    crit = root.parent / "c.yaml"
    crit.write_text("name: x\nrun: {commands: [], time_budget_s: 5, metrics_files: [m.json]}\n")
    with pytest.raises(SystemExit) as exc:
        from toolkit.cli import run as cli_run

        cli_run(main, "labcoat", ["iterate", "run", "--criteria", str(crit), "--repo", str(root)])
    assert exc.value.code == 2
    assert "run.commands" in capsys.readouterr().err


def test_no_git_baseline_then_improvement_and_fast_baseline(root: Path, capsys) -> None:
    crit = root.parent / "criteria.yaml"
    text = CRITERIA.replace("{budget}", "30").replace("{stall}", "30")
    crit.write_text(text.replace("max_epochs: 2", "max_epochs: 2\n  baseline_time_limit_s: 1"))
    args = ["iterate", "run", "--criteria", str(crit), "--repo", str(root), "--format", "json"]
    config(root, "LR = 0.05\nSLEEP = 5\n")  # a slow baseline is refused
    assert main([*args, "--no-git"]) == 4
    res = json.loads(capsys.readouterr().out)
    assert res["run"]["status"] == "timed_out"
    assert (
        "baseline_time_limit_s 1 s"
        in next(c for c in res["criteria"] if c["name"] == "run:fast-baseline")["message"]
    )
    config(root, "LR = 0.05\n")
    assert main([*args, "--no-git"]) == 5
    res = json.loads(capsys.readouterr().out)
    assert any("baseline recorded" in n for n in res["notes"])
    assert len(list(git.Repo(root).iter_commits())) == 1  # --no-git: nothing committed
    config(root, "LR = 0.2\n")
    code = main(args)  # compared with the recorded baseline: improved, committed
    res = json.loads(capsys.readouterr().out)
    assert code == 0, [c["message"] for c in res["criteria"]] + res["notes"]
    val = next(c for c in res["criteria"] if c["name"] == "val_loss")
    assert val["status"] == "improved" and val["baseline"] > val["value"]
