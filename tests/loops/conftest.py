"""Real temporary git repos for the loops tests (every git write happens under tmp_path)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import git
import pytest

PY = sys.executable

EVAL_PY = """\
import re, sys
src = open("model.py").read()
value = float(re.search(r"VALUE = ([-0-9.eE+]+)", src).group(1))
print(f"score={abs(value - 3.0):.6f}")
"""


@pytest.fixture(autouse=True)
def git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path_factory.mktemp("gitcfg") / "gitconfig"
    cfg.write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def protocol_text(**over: object) -> str:
    fields = {
        "name": "t1",
        "eval": f"{PY} eval.py",
        "train": None,
        "limit": 20,
        "max_rounds": 10,
        "variable": '["model.py", "extra/*.py"]',
        "fixed": '["eval.py", "data.txt"]',
        "target": None,
    }
    fields.update(over)
    train = f"train_command: {fields['train']!r}\n" if fields["train"] else ""
    target = f"  target: {fields['target']}\n" if fields["target"] is not None else ""
    return (
        "---\n"
        f"name: {fields['name']}\n"
        "question: Which VALUE minimises the score?\n"
        "metric:\n  name: score\n  direction: minimize\n  regex: 'score=(\\S+)'\n"
        + target
        + f"fixed_files: {fields['fixed']}\n"
        f"variable_files: {fields['variable']}\n"
        "allowed_range: VALUE in [-10, 10]\n" + train + f"eval_command: {fields['eval']!r}\n"
        f"time_limit_s: {fields['limit']}\n"
        f"max_rounds: {fields['max_rounds']}\n"
        "plateau: {rounds: 3, min_delta: 0.0}\n"
        "---\n\n# Protocol\n\nFree text for people.\n"
    )


def make_repo(root: Path, value: float = 5.0, protocol: str | None = None) -> git.Repo:
    root.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(root)
    (root / "eval.py").write_text(EVAL_PY)
    (root / "model.py").write_text(f"VALUE = {value}\n")
    (root / "data.txt").write_text("1 2 3\n")
    (root / "extra").mkdir()
    (root / "extra" / "helpers.py").write_text("X = 1\n")
    (root / ".gitignore").write_text("checkpoints/\n")
    (root / "autoresearch-protocol.md").write_text(protocol or protocol_text())
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "initial")
    return repo


def set_value(root: Path, value: float) -> None:
    (root / "model.py").write_text(f"VALUE = {value}\n")


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    return make_repo(tmp_path / "repo")


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
