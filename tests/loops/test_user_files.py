"""Loops own only what a round made: the user's untracked files are never committed, moved or
changed, inside or outside the Variable paths, across rounds, a user edit and a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from tests.loops.conftest import PY, make_repo, protocol_text, set_value
from tests.loops.test_autoresearch import init, judge, run_dir
from toolkit.errors import InputError
from toolkit.loops.__main__ import main

SLOW_TRAIN = """\
import os, time
if os.path.exists("checkpoints/slow"):
    open("checkpoints/started", "w").write(str(os.getpid()))
    time.sleep(60)
"""


def committed_paths(repo: git.Repo) -> set[str]:
    out = repo.git.log("--all", "--name-only", "--format=")
    return {line for line in out.splitlines() if line}


@pytest.fixture
def root(repo: git.Repo) -> Path:
    r = Path(repo.working_tree_dir)
    init(r)
    return r


def brief(root: Path) -> None:
    assert main(["autoresearch", "brief", "--repo", str(root)]) == 0


def test_scenario_user_files_survive_rounds_edit_and_sigkill(tmp_path: Path, capsys) -> None:
    root = tmp_path / "repo"
    proto = protocol_text(train=f"{PY} train.py", fixed='["eval.py", "data.txt", "train.py"]')
    repo = make_repo(root, protocol=proto)
    (root / "train.py").write_text(SLOW_TRAIN)
    repo.git.add("train.py")
    repo.git.commit("-qm", "slow train")
    user: dict[str, bytes] = {}

    def put(rel: str, data: bytes) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        user[rel] = data

    put("notes/user.txt", b"outside Variable, before init\n")
    put("data/blob.bin", bytes(range(256)) * 64)
    init(root)
    put("extra/user_helper.py", b"# the user's, inside Variable, after init\nU = 1\n")

    # round 1: an improvement; the user's Variable file must not ride along in the commit
    brief(root)
    set_value(root, 4.0)
    assert judge(root, "closer") == 0
    assert "extra/user_helper.py" not in repo.head.commit.stats.files

    # between rounds the user edits a file and creates one inside Variable paths
    put("notes/user.txt", user["notes/user.txt"] + b"an edit between rounds\n")
    put("extra/between.py", b"B = 2\n")
    brief(root)
    set_value(root, 9.0)
    (root / "extra" / "round_made.py").write_text("R = 3\n")  # the round's own new file
    assert judge(root, "far away") == 3  # rolled back
    assert not (root / "extra" / "round_made.py").exists()  # the round's file: moved to trash
    assert (run_dir(root) / "trash" / "round-002" / "extra" / "round_made.py").exists()

    # round 3: the supervisor is SIGKILLed while the round's train command runs
    put("extra/late.py", b"# created before the brief of round 3\n")
    brief(root)
    set_value(root, 2.0)
    (root / "checkpoints").mkdir(exist_ok=True)
    (root / "checkpoints" / "slow").write_text("")
    cmd = [sys.executable, "-m", "toolkit.loops", "autoresearch", "judge", "--strategy", "killed",
           "--repo", str(root)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = root / "checkpoints" / "started"
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the round's train command never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    train_pid = int(started.read_text())
    (root / "checkpoints" / "slow").unlink()
    capsys.readouterr()
    assert main(["autoresearch", "status", "--repo", str(root), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in status["results"]] == [
        "baseline", "improved", "not_improved", "failed",
    ]  # fmt: skip
    with pytest.raises(ProcessLookupError):  # recovery killed the orphaned train group
        for _ in range(100):
            os.kill(train_pid, 0)
            time.sleep(0.05)
    assert (root / "model.py").read_text() == "VALUE = 4.0\n"  # round 3 rolled back

    for rel, data in user.items():
        assert (root / rel).read_bytes() == data, f"{rel} changed"
    assert not committed_paths(repo) & set(user), "a user file was committed"
    trashed = {
        str(p.relative_to(t)) for t in (run_dir(root) / "trash").glob("*") for p in t.rglob("*")
    }
    assert not trashed & set(user), "a user file was moved to the trash"


def test_change_to_a_user_file_is_reported_not_committed(root: Path, capsys) -> None:
    (root / "notes").mkdir()
    (root / "notes" / "log.txt").write_text("line 1\n")
    (root / "extra" / "mine.py").write_text("M = 1\n")
    brief(root)
    with open(root / "notes" / "log.txt", "a") as fh:  # an append during the round
        fh.write("line 2\n")
    (root / "extra" / "mine.py").write_text("M = 2  # longer\n")
    set_value(root, 4.0)
    capsys.readouterr()
    assert (
        main(["autoresearch", "judge", "--strategy", "s", "--repo", str(root), "--format", "json"])
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["changed"] == ["model.py"]
    notes = "\n".join(res["notes"])
    assert "notes/log.txt: the user's untracked file changed" in notes
    assert "extra/mine.py: the user's untracked file changed" in notes
    assert (root / "extra" / "mine.py").read_text() == "M = 2  # longer\n"


def test_init_explains_how_to_start_with_user_files_in_variable_paths(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    proto = protocol_text(variable='["model.py", "extra/*.py", "exp/*.py"]')
    make_repo(root, protocol=proto)
    (root / "exp").mkdir()
    (root / "exp" / "a.py").write_text("A = 1\n")
    (root / "extra" / "mine.py").write_text("M = 1\n")
    with pytest.raises(InputError) as err:
        init(root)
    msg = str(err.value)
    assert "exp/a.py extra/mine.py" in msg and "git add -- exp/a.py extra/mine.py" in msg
    assert "'exp/*.py' match only these files" in msg and "Nothing was changed" in msg
    assert not (root / ".labcoat").exists()
    assert (root / "exp" / "a.py").read_text() == "A = 1\n"
