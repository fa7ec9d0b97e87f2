"""ml-iteration: per-criterion verdicts and the shared safe git action."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from tests.loops.conftest import PY
from toolkit.errors import InputError
from toolkit.loops.__main__ import main
from toolkit.loops.criteria import CriterionResult, judge_numeric, verdict

CRITERIA = f"""\
name: exp
variable_files: ["src/**"]
metrics:
  - {{name: val_loss, direction: minimize, threshold: 2.5, min_delta: 0.01}}
performance:
  - {{name: step_time_s, direction: minimize, max_regression_pct: 5}}
  - {{name: mfu, direction: maximize, threshold: 0.2}}
observability: {{required_keys: [loss, lr]}}
stability: {{no_nan: [loss]}}
custom:
  - {{name: smoke, command: "{PY} -c 'pass'", timeout_s: 30}}
"""

BASE = {"val_loss": 2.0, "step_time_s": 1.0, "mfu": 0.3, "loss": [3.0, 2.0], "lr": 0.001}


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    repo = git.Repo.init(root)
    (root / "src" / "train.py").write_text("LR = 1e-3\n")
    (root / ".gitignore").write_text("ckpt/\n")
    repo.git.add("-A")
    repo.git.commit("-qm", "init")
    (root / "user_notes.md").write_text("mine")  # untracked, before any judge
    start(root, tmp_path)
    return repo


def start(root: Path, tmp_path: Path) -> None:
    """The baseline judge (--no-git): records the user's untracked files as the start."""
    args = ["iterate", "judge", "--criteria", str(write(tmp_path, "c.yaml", CRITERIA)),
            "--metrics", str(write(tmp_path, "b.json", BASE)), "--repo", str(root), "--no-git"]  # fmt: skip
    assert main(args) == 5  # neutral


def write(tmp_path: Path, name: str, data: dict | str) -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def iterate(root: Path, tmp_path: Path, metrics: dict, capsys=None) -> int:
    args = ["iterate", "judge", "--criteria", str(write(tmp_path, "c.yaml", CRITERIA)),
            "--metrics", str(write(tmp_path, "m.json", metrics)),
            "--baseline", str(write(tmp_path, "b.json", BASE)), "--repo", str(root), "--format", "json"]  # fmt: skip
    return main(args)


def test_numeric_statuses() -> None:
    spec = {"name": "x", "direction": "minimize", "threshold": 5, "min_delta": 0.1}
    assert judge_numeric(spec, "metric", {"x": 1.0}, {"x": 2.0}).status == "improved"
    assert judge_numeric(spec, "metric", {"x": 3.0}, {"x": 2.0}).status == "regressed"
    assert judge_numeric(spec, "metric", {"x": 2.05}, {"x": 2.0}).status == "pass"
    assert judge_numeric(spec, "metric", {"x": 6.0}, {"x": 2.0}).status == "fail"
    assert judge_numeric(spec, "metric", {}, {"x": 2.0}).status == "fail"
    assert judge_numeric(spec, "metric", {"x": float("nan")}, {}).status == "fail"


def test_verdict_rules() -> None:
    def c(*statuses: str) -> list[CriterionResult]:
        return [CriterionResult(f"c{i}", "metric", s) for i, s in enumerate(statuses)]

    assert verdict(c("improved", "pass"))[0] == "commit"
    assert verdict(c("improved", "regressed"))[0] == "accept_with_note"
    assert verdict(c("pass", "regressed"))[0] == "rollback"
    assert verdict(c("improved", "fail"))[0] == "rollback"
    assert verdict(c("pass", "pass"))[0] == "accept_with_note"


def test_commit_on_improvement(repo: git.Repo, tmp_path: Path, capsys) -> None:
    root = Path(repo.working_tree_dir)
    head = repo.head.commit.hexsha
    (root / "src" / "train.py").write_text("LR = 3e-4\n")
    (root / "src" / "sched.py").write_text("WARMUP = 100\n")
    code = iterate(root, tmp_path, {**BASE, "val_loss": 1.8})
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["verdict"] == "commit"
    assert repo.head.commit.parents[0].hexsha == head
    assert set(repo.head.commit.stats.files) == {"src/train.py", "src/sched.py"}
    assert (root / "user_notes.md").exists()
    assert {c["name"]: c["status"] for c in out["criteria"]}["val_loss"] == "improved"


def test_rollback_on_failure_keeps_user_files(repo: git.Repo, tmp_path: Path, capsys) -> None:
    root = Path(repo.working_tree_dir)
    head = repo.head.commit.hexsha
    (root / "ckpt").mkdir()
    (root / "ckpt" / "model.pt").write_text("w")
    (root / "src" / "train.py").write_text("LR = 1.0\n")
    (root / "src" / "new.py").write_text("N = 1\n")
    code = iterate(root, tmp_path, {**BASE, "loss": [3.0, float("nan")], "val_loss": 1.0})
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and out["verdict"] == "rollback"
    assert {c["name"]: c["status"] for c in out["criteria"]}["finite:loss"] == "fail"
    assert repo.head.commit.hexsha == head
    assert (root / "src" / "train.py").read_text() == "LR = 1e-3\n"
    assert not (root / "src" / "new.py").exists()
    assert (root / "user_notes.md").read_text() == "mine"
    assert (root / "ckpt" / "model.pt").exists()


def test_tradeoff_is_accept_with_note(repo: git.Repo, tmp_path: Path, capsys) -> None:
    root = Path(repo.working_tree_dir)
    (root / "src" / "train.py").write_text("LR = 5e-4\n")
    code = iterate(root, tmp_path, {**BASE, "val_loss": 1.5, "step_time_s": 1.2})
    out = json.loads(capsys.readouterr().out)
    assert code == 5 and out["verdict"] == "accept_with_note" and "step_time_s" in out["note"]
    assert "accept_with_note" in repo.head.commit.message


def test_change_outside_scope_fails(repo: git.Repo, tmp_path: Path, capsys) -> None:
    root = Path(repo.working_tree_dir)
    (root / ".gitignore").write_text("ckpt/\nother/\n")
    code = iterate(root, tmp_path, {**BASE, "val_loss": 1.5})
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and any(
        c["name"] == "scope" and c["status"] == "fail" for c in out["criteria"]
    )
    assert (root / ".gitignore").read_text() == "ckpt/\n"


def test_no_git_reports_only(repo: git.Repo, tmp_path: Path, capsys) -> None:
    root = Path(repo.working_tree_dir)
    (root / "src" / "train.py").write_text("LR = 1.0\n")
    args = ["iterate", "judge", "--criteria", str(write(tmp_path, "c.yaml", CRITERIA)),
            "--metrics", str(write(tmp_path, "m.json", {**BASE, "val_loss": 9.0})),
            "--baseline", str(write(tmp_path, "b.json", BASE)), "--repo", str(root), "--no-git"]  # fmt: skip
    assert main(args) == 3
    assert "verdict: rollback" in capsys.readouterr().out
    assert (root / "src" / "train.py").read_text() == "LR = 1.0\n"


class Killed(BaseException):
    pass


def test_interrupted_commit_is_finished_once(
    repo: git.Repo, tmp_path: Path, monkeypatch, capsys
) -> None:
    from toolkit.loops import criteria, gitops

    root = Path(repo.working_tree_dir)
    head = repo.head.commit.hexsha
    (root / "src" / "train.py").write_text("LR = 3e-4\n")
    real = criteria.apply_action

    def crash_after_commit(repo_, run_dir, journal, out=None):
        gitops.commit_paths(repo_, journal["paths"], journal["message"])
        raise Killed

    monkeypatch.setattr(criteria, "apply_action", crash_after_commit)
    with pytest.raises(Killed):
        iterate(root, tmp_path, {**BASE, "val_loss": 1.8})
    monkeypatch.setattr(criteria, "apply_action", real)
    journal = root / ".labcoat" / "iterate" / "exp" / "journal.json"
    assert journal.exists()
    capsys.readouterr()
    iterate(root, tmp_path, {**BASE, "val_loss": 1.8})  # the next judge recovers first
    out = json.loads(capsys.readouterr().out)
    assert any("recovered interrupted judge" in n for n in out["notes"])
    assert not journal.exists()
    assert repo.head.commit.parents[0].hexsha == head  # exactly one commit


def test_user_files_never_committed_or_moved(tmp_path: Path, capsys) -> None:
    root = tmp_path / "fresh"
    (root / "src").mkdir(parents=True)
    repo = git.Repo.init(root)
    (root / "src" / "train.py").write_text("LR = 1e-3\n")
    repo.git.add("-A")
    repo.git.commit("-qm", "init")
    (root / "src" / "mine.py").write_text("M = 1\n")  # the user's, inside variable_files
    (root / "src" / "train.py").write_text("LR = 3e-4\n")
    code = iterate(root, tmp_path, {**BASE, "val_loss": 1.8})  # first judge, no snapshot
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and set(repo.head.commit.stats.files) == {"src/train.py"}
    assert any("treated as the user's" in n for n in out["notes"])
    with open(root / "src" / "mine.py", "a") as fh:  # the user's file changes, then a rollback
        fh.write("M2 = 2\n")
    (root / "src" / "train.py").write_text("LR = 9.0\n")
    code = iterate(root, tmp_path, {**BASE, "val_loss": 9.0})
    out = json.loads(capsys.readouterr().out)
    assert code == 3
    assert any("src/mine.py: the user's untracked file changed" in n for n in out["notes"])
    assert (root / "src" / "mine.py").read_text() == "M = 1\nM2 = 2\n"
    assert "src/mine.py" not in repo.git.log("--all", "--name-only", "--format=")


def test_no_git_judges_outside_a_repository(tmp_path: Path, capsys) -> None:
    """`iterate judge --no-git` needs no git repository: the verdict only, nothing written."""
    crit = "name: exp\nmetrics:\n  - {name: val_loss, direction: minimize, threshold: 2.5}\n"
    args = ["iterate", "judge", "--criteria", str(write(tmp_path, "c.yaml", crit)),
            "--metrics", str(write(tmp_path, "m.json", {"val_loss": 2.0})),
            "--baseline", str(write(tmp_path, "b.json", {"val_loss": 2.2})),
            "--repo", str(tmp_path), "--no-git", "--format", "json"]  # fmt: skip
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "commit" and "not in a git repository" in out["notes"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # without --no-git the same call still requires git
    with pytest.raises(InputError, match="not inside a git repository"):
        main([a for a in args if a != "--no-git"])
