"""Autoresearch protocol limits, enforced on real commands: fast baseline, epoch limit,
heartbeat and stall."""

from __future__ import annotations

from pathlib import Path

import git

from tests.loops.conftest import PY, make_repo, protocol_text
from toolkit.loops.__main__ import main
from toolkit.loops.protocol import ProtocolError, protocol_from_mapping

TRAIN_PY = """\
import os, re, time
src = open("model.py").read()
get = lambda key, default: float(re.search(key + r" = (\\S+)", src).group(1)) if key in src else default
print("training", flush=True)
time.sleep(get("SLEEP", 0))
for epoch in range(int(get("EPOCHS", int(os.environ["LABCOAT_MAX_EPOCHS"])))):
    print(f"epoch {epoch} done", flush=True)
"""

LIMITS = "max_epochs: 2\nheartbeat_s: 0.2\nstall_s: 1.0\nbaseline_time_limit_s: {fast}\n"


def repo_with_limits(tmp_path: Path, fast: float, model: str = "VALUE = 5.0\n") -> Path:
    text = protocol_text(train=f"{PY} train.py", limit=20)
    text = text.replace("max_rounds:", LIMITS.format(fast=fast) + "max_rounds:", 1)
    root = tmp_path / "repo"
    repo = make_repo(root, protocol=text)
    (root / "train.py").write_text(TRAIN_PY)
    (root / "model.py").write_text(model)
    repo.git.add("-A")
    repo.git.commit("-qm", "train script")
    return root


def init(root: Path) -> int:
    return main(["autoresearch", "init", str(root / "autoresearch-protocol.md"), "--repo", str(root)])  # fmt: skip


def judge(root: Path) -> int:
    return main(["autoresearch", "judge", "--strategy", "s", "--repo", str(root)])


def test_slow_baseline_is_refused(tmp_path: Path, capsys) -> None:
    # the baseline budget (0.5 s) runs out before the stall limit (1 s) could fire
    root = repo_with_limits(tmp_path, fast=0.5, model="VALUE = 5.0\nSLEEP = 5\n")
    assert init(root) == 4
    err = capsys.readouterr().err
    assert "baseline too slow" in err and "baseline_time_limit_s 0.5 s" in err
    assert not (root / ".labcoat" / "autoresearch" / "t1").exists()
    assert git.Repo(root).active_branch.name == "main"


def test_epoch_limit_heartbeat_and_stall(tmp_path: Path, capsys) -> None:
    root = repo_with_limits(tmp_path, fast=10.0)
    assert init(root) == 0
    (root / "model.py").write_text("VALUE = 3.0\nEPOCHS = 5\n")  # better score, too many epochs
    capsys.readouterr()
    assert judge(root) == 4
    out = capsys.readouterr().out
    assert "epoch limit: the round ran 5 epochs, the protocol allows 2" in out
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"  # rolled back

    (root / "model.py").write_text("VALUE = 3.0\nSLEEP = 30\n")  # prints, then hangs
    assert judge(root) == 4
    res = capsys.readouterr()
    assert "stalled: no new output for 1 s" in res.out
    assert "[labcoat heartbeat] train:" in res.err

    (root / "model.py").write_text("VALUE = 3.0\n")
    assert judge(root) == 0


def test_limit_fields_are_checked() -> None:
    base = {
        "name": "x", "question": "q", "metric": {"name": "m", "direction": "minimize", "regex": "m=(\\S+)"},
        "fixed_files": ["eval.py"], "variable_files": ["model.py"], "eval_command": "python eval.py",
        "time_limit_s": 10, "max_rounds": 3,
    }  # fmt: skip
    bad = {
        **base,
        "baseline_time_limit_s": 30,
        "max_epochs": 0,
        "epoch_regex": "epoch",
        "stall_s": -1,
    }
    try:
        protocol_from_mapping(bad)
    except ProtocolError as exc:
        text = "\n".join(exc.problems)
    else:
        raise AssertionError("bad limits accepted")
    for field in ("baseline_time_limit_s", "max_epochs", "epoch_regex", "stall_s"):
        assert f"field '{field}'" in text
    ok = protocol_from_mapping({**base, "baseline_time_limit_s": 5, "max_epochs": 2})
    assert ok.baseline_time_limit_s == 5.0 and ok.max_epochs == 2 and ok.heartbeat_s == 30.0
