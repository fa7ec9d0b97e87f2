"""A supervisor killed at any step: the next command finishes or rolls back the round."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from tests.loops.conftest import set_value
from tests.loops.test_autoresearch import init, porcelain, results, run_dir
from toolkit.loops import records
from toolkit.loops.__main__ import main
from toolkit.loops.judge import judge_round, load_run
from toolkit.loops.recovery import recover


class Killed(BaseException):
    pass


def killer(at: str):
    def hook(step: str) -> None:
        if step == at:
            raise Killed(step)

    return hook


@pytest.fixture
def root(repo: git.Repo) -> Path:
    r = Path(repo.working_tree_dir)
    init(r)
    return r


STEPS_IMPROVED = ["started", "evaluated", "before_git", "committing", "committed", "recorded"]
STEPS_REGRESSED = ["started", "evaluated", "before_git", "committing", "rolled_back", "recorded"]


@pytest.mark.parametrize("step", STEPS_IMPROVED)
def test_killed_during_improving_round(root: Path, step: str) -> None:
    repo = git.Repo(root)
    base = repo.head.commit.hexsha
    set_value(root, 4.0)
    (root / "notes.txt").write_text("user")  # created before the round? no: after init -> new file
    (root / "notes.txt").unlink()
    with pytest.raises(Killed):
        judge_round(load_run(root, None), "improve", "x", hook=killer(step))
    res = recover(load_run(root, None))
    assert res is not None and not (run_dir(root) / "round.json").exists()
    rows = results(root)
    assert [r["round"] for r in rows] == ["0", "1"]
    if step in ("started", "evaluated"):  # metric unknown or not yet journaled: rolled back
        assert res.outcome == "failed" and "interrupted" in res.reason
        assert repo.head.commit.hexsha == base
        assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    else:
        assert res.outcome == "improved"
        assert repo.head.commit.parents[0].hexsha == base  # exactly one commit
        assert repo.head.commit.message.count("Labcoat-Round: 1") == 1
        assert rows[-1]["commit"] == repo.head.commit.hexsha[:12]
    assert porcelain(repo) == ""
    assert recover(load_run(root, None)) is None  # nothing left to do
    state = records.read_json(run_dir(root) / "state.json")
    assert state["rounds"] == 1


@pytest.mark.parametrize("step", STEPS_REGRESSED)
def test_killed_during_regressing_round(root: Path, step: str) -> None:
    repo = git.Repo(root)
    base = repo.head.commit.hexsha
    set_value(root, 9.0)
    (root / "extra" / "new.py").write_text("N = 1\n")
    with pytest.raises(Killed):
        judge_round(load_run(root, None), "worse", "", hook=killer(step))
    res = recover(load_run(root, None))
    assert res is not None
    assert repo.head.commit.hexsha == base
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    assert not (root / "extra" / "new.py").exists()
    assert porcelain(repo) == ""
    assert len(results(root)) == 2
    assert (run_dir(root) / "experiences.md").read_text().count("## Round 1") == 1


def test_next_command_recovers(root: Path, capsys) -> None:
    set_value(root, 4.0)
    with pytest.raises(Killed):
        judge_round(load_run(root, None), "improve", "", hook=killer("committed"))
    assert main(["autoresearch", "status", "--repo", str(root)]) == 0
    assert "recovered interrupted round 1: improved" in capsys.readouterr().err


def test_real_sigkill_of_supervisor(tmp_path: Path, root: Path) -> None:
    """Kill the supervisor process mid-eval; its eval child must not survive recovery."""
    pidfile = tmp_path / "eval.pid"
    state_file = run_dir(root) / "state.json"
    state = records.read_json(state_file)
    state["protocol"]["train_command"] = (
        f"{sys.executable} -c \"import os,time; open('{pidfile}','w').write(str(os.getpid())); time.sleep(60)\""
    )
    records.write_json(state_file, state)
    set_value(root, 4.0)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit.loops",
            "autoresearch",
            "judge",
            "--strategy",
            "s",
            "--repo",
            str(root),
        ],
        cwd=root,
    )
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    child = int(pidfile.read_text())
    os.kill(child, 0)  # the orphaned train process is still running
    res = recover(load_run(root, None))
    assert res.outcome == "failed" and "process group was killed" in res.reason
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert (root / "model.py").read_text() == "VALUE = 5.0\n"
    assert porcelain(git.Repo(root)) == ""


def test_reused_pid_is_never_killed(root: Path) -> None:
    """A journal naming a process group that is now someone else's: recovery leaves it alone."""
    from toolkit.loops.judge import process_identity

    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    try:
        ident = process_identity(other.pid)
        assert ident is not None
        set_value(root, 4.0)
        with pytest.raises(Killed):
            judge_round(load_run(root, None), "x", "", hook=killer("started"))
        journal_path = run_dir(root) / "round.json"
        journal = records.read_json(journal_path)
        journal.update(pgid=other.pid, process={**ident, "start_ticks": ident["start_ticks"] - 1})
        records.write_json(journal_path, journal)
        res = recover(load_run(root, None))
        assert res.outcome == "failed" and "killed" not in res.reason
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait()


def test_edit_after_evaluation_is_not_committed_by_recovery(root: Path) -> None:
    repo = git.Repo(root)
    base = repo.head.commit.hexsha
    set_value(root, 4.0)
    with pytest.raises(Killed):
        judge_round(load_run(root, None), "improve", "", hook=killer("before_git"))
    set_value(root, 3.9)  # someone edits the round's file before recovery runs
    res = recover(load_run(root, None))
    assert res.outcome == "failed" and "changed since the evaluation" in res.reason
    assert repo.head.commit.hexsha == base
    assert (run_dir(root) / "trash" / "round-001" / "model.py").read_text() == "VALUE = 3.9\n"


def test_second_command_on_a_locked_run_is_refused(root: Path) -> None:
    from toolkit.errors import InputError

    with records.run_lock(run_dir(root)):
        with pytest.raises(InputError, match="another labcoat command"):
            main(["autoresearch", "status", "--repo", str(root)])
    assert main(["autoresearch", "status", "--repo", str(root)]) == 0
