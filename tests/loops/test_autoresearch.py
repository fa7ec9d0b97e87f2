"""init / judge / status on real temporary git repos."""

from __future__ import annotations

import os
import time
from pathlib import Path

import git
import pytest

from tests.loops.conftest import PY, make_repo, protocol_text, set_value
from toolkit.errors import InputError
from toolkit.loops import records
from toolkit.loops.__main__ import main


def init(root: Path) -> None:
    assert (
        main(["autoresearch", "init", str(root / "autoresearch-protocol.md"), "--repo", str(root)])
        == 0
    )


def judge(root: Path, strategy: str = "try", insight: str = "") -> int:
    return main(
        ["autoresearch", "judge", "--strategy", strategy, "--insight", insight, "--repo", str(root)]
    )


def run_dir(root: Path, name: str = "t1") -> Path:
    return root / ".labcoat" / "autoresearch" / name


def results(root: Path) -> list[dict[str, str]]:
    return records.read_results(run_dir(root) / "results.tsv")


def porcelain(repo: git.Repo) -> str:
    return repo.git.status("--porcelain", "--untracked-files=all")


@pytest.fixture
def root(repo: git.Repo) -> Path:
    r = Path(repo.working_tree_dir)
    init(r)
    return r


def test_init_creates_branch_and_logs(root: Path) -> None:
    repo = git.Repo(root)
    assert repo.active_branch.name == "autoresearch/t1"
    rows = results(root)
    assert (
        rows[0]["round"] == "0"
        and rows[0]["status"] == "baseline"
        and float(rows[0]["metric"]) == 2.0
    )
    assert "## Round 0" in (run_dir(root) / "experiences.md").read_text()
    assert porcelain(repo) == ""  # .labcoat ignores itself


def test_improvement_is_committed(root: Path, capsys) -> None:
    repo = git.Repo(root)
    before = repo.head.commit.hexsha
    set_value(root, 4.0)
    (root / "extra" / "added.py").write_text("A = 1\n")
    (root / "extra" / "helpers.py").unlink()
    assert judge(root, "move VALUE toward 3", "closer is better") == 0
    assert set(repo.head.commit.stats.files) == {"model.py", "extra/added.py", "extra/helpers.py"}
    assert repo.head.commit.parents[0].hexsha == before
    msg = repo.head.commit.message
    assert "round 1" in msg and "score=1" in msg and "move VALUE toward 3" in msg
    assert porcelain(repo) == ""
    row = results(root)[-1]
    assert row["status"] == "improved" and row["commit"] == repo.head.commit.hexsha[:12]
    assert "closer is better" in (run_dir(root) / "experiences.md").read_text()


def test_regression_keeps_user_file_and_ignored_checkpoint(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir)
    (root / "notes").mkdir()
    (root / "notes" / "user.txt").write_text("my notes")  # the user's, untracked, before init
    init(root)
    head = repo.head.commit.hexsha
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "ckpt.pt").write_text("weights")  # ignored: a run artefact
    set_value(root, 9.0)
    (root / "extra" / "new_helper.py").write_text("Y = 2\n")
    assert judge(root, "far away") == 3
    assert repo.head.commit.hexsha == head
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    assert not (root / "extra" / "new_helper.py").exists()
    assert (root / "notes" / "user.txt").read_text() == "my notes"
    assert (root / "checkpoints" / "ckpt.pt").read_text() == "weights"
    assert porcelain(repo) == "?? notes/user.txt"
    assert (run_dir(root) / "results.tsv").exists() and (run_dir(root) / "experiences.md").exists()


def test_user_file_made_during_round_fails_round_but_survives(root: Path) -> None:
    repo = git.Repo(root)
    head = repo.head.commit.hexsha
    (root / "notes").mkdir()
    (root / "notes" / "user.txt").write_text("my notes")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "ckpt.pt").write_text("weights")
    # the user file appeared before the round: snapshot it by running status (no round pending)
    set_value(root, 9.0)
    (root / "extra" / "new_helper.py").write_text("Y = 2\n")  # a new Variable file
    (root / "extra" / "helpers.py").unlink()  # a deleted Variable file
    assert judge(root, "far away") == 4  # notes/user.txt is new and outside Variable -> failed
    assert (root / "notes" / "user.txt").read_text() == "my notes"
    # the user file is now part of the snapshot; a plain regression is "not improved"
    set_value(root, 9.0)
    (root / "extra" / "new_helper.py").write_text("Y = 2\n")
    (root / "extra" / "helpers.py").unlink()
    assert judge(root, "far away again") == 3
    assert repo.head.commit.hexsha == head
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    assert (root / "extra" / "helpers.py").read_text() == "X = 1\n"
    assert not (root / "extra" / "new_helper.py").exists()
    assert (root / "notes" / "user.txt").read_text() == "my notes"
    assert (root / "checkpoints" / "ckpt.pt").read_text() == "weights"
    trash = run_dir(root) / "trash" / "round-002"
    assert (trash / "extra" / "new_helper.py").read_text() == "Y = 2\n"  # nothing lost
    assert (trash / "model.py").read_text() == "VALUE = 9.0\n"
    assert porcelain(repo) == "?? notes/user.txt"
    assert [r["status"] for r in results(root)] == ["baseline", "failed", "not_improved"]


def test_fixed_file_touched_fails_and_is_restored(root: Path) -> None:
    repo = git.Repo(root)
    (root / "eval.py").write_text('print("score=0")\n')
    set_value(root, 4.0)
    assert judge(root, "cheat") == 4
    assert (root / "eval.py").read_text().startswith("import re")
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    assert porcelain(repo) == ""
    exp = (run_dir(root) / "experiences.md").read_text()
    assert "eval.py: Fixed file modified" in exp


def test_new_file_outside_variable_fails_and_is_kept(root: Path) -> None:
    repo = git.Repo(root)
    head = repo.head.commit.hexsha
    (root / "src").mkdir()
    (root / "src" / "other.py").write_text("Z = 3\n")
    set_value(root, 4.0)
    assert judge(root, "sneaky") == 4
    assert repo.head.commit.hexsha == head
    assert (root / "src" / "other.py").exists()  # not ours to delete
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    # the kept file is in the snapshot now: the next round is judged on its own merits
    set_value(root, 4.0)
    assert judge(root, "honest") == 0


@pytest.mark.parametrize(
    ("eval_cmd", "why"),
    [(f"{PY} -c 'raise SystemExit(3)'", "exited with code 3"), (f"{PY} -c 'print(1)'", "matched nothing"),
     (f"{PY} -c 'print(\"score=nan\")'", "not a finite number"), (f"{PY} -c 'print(\"score=abc\")'", "is not a number")],
)  # fmt: skip
def test_eval_crash_or_no_metric_fails(tmp_path: Path, eval_cmd: str, why: str) -> None:
    root = tmp_path / "r"
    repo = make_repo(root, protocol=protocol_text(eval=f"{PY} eval.py"))
    init(root)
    # swap in a broken eval by editing the stored protocol copy (the protocol is frozen at init)
    state_file = run_dir(root) / "state.json"
    state = records.read_json(state_file)
    state["protocol"]["eval_command"] = eval_cmd
    records.write_json(state_file, state)
    set_value(root, 4.0)
    assert judge(root) == 4
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    assert porcelain(repo) == ""
    assert why in (run_dir(root) / "experiences.md").read_text()


def test_timeout_kills_process_group(tmp_path: Path) -> None:
    root = tmp_path / "r"
    pidfile = tmp_path / "child.pid"
    train = f"{PY} -c \"import subprocess,sys,time; p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); open('{pidfile}','w').write(str(p.pid)); time.sleep(60)\""
    repo = make_repo(root)
    init(root)
    state_file = run_dir(root) / "state.json"
    state = records.read_json(state_file)
    state["protocol"].update(train_command=train, time_limit_s=1.5)
    records.write_json(state_file, state)
    set_value(root, 4.0)
    t0 = time.monotonic()
    assert judge(root) == 4
    assert time.monotonic() - t0 < 10
    child = int(pidfile.read_text())
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert "timed out" in (run_dir(root) / "experiences.md").read_text()
    assert porcelain(repo) == ""


def test_dirty_tree_at_init_is_refused(repo: git.Repo) -> None:
    root = Path(repo.working_tree_dir)
    set_value(root, 4.0)
    with pytest.raises(InputError, match="dirty"):
        init(root)
    assert repo.active_branch.name == "main"
    assert not (root / ".labcoat").exists()
    assert [h.name for h in repo.heads] == ["main"]
    assert (root / "model.py").read_text() == "VALUE = 4.0\n"


def test_baseline_failure_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "r"
    repo = make_repo(root, protocol=protocol_text(train=f"{PY} -c 'raise SystemExit(1)'"))
    code = main(
        ["autoresearch", "init", str(root / "autoresearch-protocol.md"), "--repo", str(root)]
    )
    assert code == 4
    assert [h.name for h in repo.heads] == ["main"]
    assert not run_dir(root).exists()


def test_worktree_run(tmp_path: Path) -> None:
    root = tmp_path / "r"
    text = protocol_text().replace(
        "plateau:", "workspace: {worktree: ../wt, branch: ar/wt}\nplateau:"
    )
    repo = make_repo(root, protocol=text)
    init(root)
    wt = tmp_path / "wt"
    assert repo.active_branch.name == "main" and (wt / "model.py").exists()
    set_value(wt, 3.5)
    assert judge(wt) == 0
    assert git.Repo(wt).head.commit.message.startswith("autoresearch t1 round 1")
    assert run_dir(root).is_dir() and not (wt / ".labcoat").exists()


def test_stray_commit_by_researcher_is_folded_in(root: Path) -> None:
    repo = git.Repo(root)
    base = repo.head.commit.hexsha
    set_value(root, 4.0)
    repo.git.commit("-qam", "researcher committed by mistake")
    assert judge(root) == 0
    assert repo.head.commit.parents[0].hexsha == base


def test_status_and_brief(root: Path, capsys) -> None:
    set_value(root, 4.0)
    judge(root, "step one", "it helps")
    set_value(root, 8.0)
    judge(root, "step two", "overshoot hurts")
    capsys.readouterr()
    assert main(["autoresearch", "status", "--repo", str(root), "--format", "json"]) == 0
    import json

    st = json.loads(capsys.readouterr().out)
    assert st["rounds"] == 2 and st["best"]["metric"] == 1.0 and st["plateau_count"] == 1
    assert main(["autoresearch", "brief", "--repo", str(root)]) == 0
    brief = capsys.readouterr().out
    assert "round 3 of 10" in brief and "`model.py`" in brief and "overshoot hurts" in brief
    assert "Best so far: 1" in brief


def test_max_rounds_refused(tmp_path: Path) -> None:
    root = tmp_path / "r"
    make_repo(root, protocol=protocol_text(max_rounds=1))
    init(root)
    set_value(root, 4.0)
    assert judge(root) == 0
    with pytest.raises(InputError, match="max_rounds"):
        judge(root)
