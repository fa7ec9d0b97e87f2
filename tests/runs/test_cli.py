"""CLI: plans, sweeps, clear errors (exit 2) for user mistakes, nothing overwritten."""

from __future__ import annotations

from pathlib import Path

from tests.runs.conftest import cli, cli_json

PLAN = """# Learning-rate sweep, 125M

## Goal
Find the LR that minimises eval loss after 1B tokens.

## Runs
- lr in {1e-4, 3e-4}
"""


def test_plan_save_link_list_show(project: Path) -> None:
    (project / "PLAN.md").write_text(PLAN)
    assert cli("sweep", "create", "--name", "lr", "--goal", "pick lr", cwd=project).returncode == 0
    saved = cli_json("plan", "save", "PLAN.md", "--sweep", "lr", cwd=project)
    assert saved["name"] == "learning-rate-sweep-125m"
    assert saved["title"] == "Learning-rate sweep, 125M"
    assert saved["goal"] == "Find the LR that minimises eval loss after 1B tokens."
    assert saved["sweeps"] == ["lr"] and saved["markdown"] == PLAN
    assert cli_json("sweep", "show", "--name", "lr", cwd=project)["sweep"]["plan"] == saved["name"]
    listed = cli_json("plan", "list", cwd=project)
    assert [p["name"] for p in listed] == [saved["name"]]
    shown = cli("plan", "show", saved["name"], cwd=project)
    assert shown.returncode == 0 and "goal: Find the LR" in shown.stdout and PLAN in shown.stdout
    # saving again updates in place
    (project / "PLAN.md").write_text(PLAN.replace("1B", "2B"))
    again = cli_json("plan", "save", "PLAN.md", cwd=project)
    assert again["id"] == saved["id"] and "2B" in again["goal"] and again["sweeps"] == ["lr"]
    linked = cli_json("sweep", "create", "--name", "lr2", "--plan", saved["name"], cwd=project)
    assert linked["plan"] == saved["name"]
    table = cli("sweep", "list", cwd=project)
    assert "lr2" in table.stdout and saved["name"] in table.stdout


def test_errors_exit_2(project: Path) -> None:
    cases = [
        (["run", "create", "--name", "a"], "--command"),
        (["run", "create", "--name", "a", "--command", " "], "--command: give the command"),
        (
            ["run", "create", "--name", "a", "--command", "true", "--sweep", "nope"],
            "unknown sweep 'nope'",
        ),
        (["run", "list", "--sweep", "nope"], "unknown sweep 'nope'"),
        (["sweep", "show", "--name", "nope"], "unknown sweep 'nope'"),
        (["sweep", "start", "--name", "nope"], "unknown sweep 'nope'"),
        (["run", "show", "ghost"], "unknown run 'ghost'"),
        (["run", "start", "ghost"], "unknown run 'ghost'"),
        (["run", "cancel", "ghost"], "unknown run 'ghost'"),
        (["plan", "show", "ghost"], "unknown plan 'ghost'"),
        (["plan", "save", "missing.md"], "missing.md is missing"),
        (["plan", "save", "PLAN.md", "--sweep", "nope"], "unknown sweep 'nope'"),
        (
            ["sweep", "grid", "--name", "g", "--param", "lr=1", "--command", "x {bs}"],
            "no --param defines",
        ),
        (["run", "create", "--name", "a b", "--command", "true"], "run name 'a b'"),
        (
            ["run", "create", "--name", "a", "--command", "true", "--env", "NOEQUALS"],
            "expected KEY=VALUE",
        ),
        (["run", "create", "--name", "a", "--command", "true", "--gpus", "-1"], "--gpus"),
        (["run", "list", "--status", "weird"], "invalid choice"),
    ]
    (project / "PLAN.md").write_text(PLAN)
    for args, message in cases:
        res = cli(*args, cwd=project)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert message in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    # none of the failed commands left anything behind
    assert cli_json("run", "list", cwd=project) == []
    assert cli_json("sweep", "list", cwd=project) == []


def test_grid_is_atomic(project: Path) -> None:
    assert (
        cli("run", "create", "--name", "g-lr_2", "--command", "true", cwd=project).returncode == 0
    )
    res = cli(
        "sweep", "grid", "--name", "g", "--param", "lr=1,2,3", "--command", "echo {lr}", cwd=project
    )
    assert res.returncode == 2 and "run 'g-lr_2' already exists" in res.stderr
    assert [r["name"] for r in cli_json("run", "list", cwd=project)] == ["g-lr_2"]


def test_sweep_start_starts_queued(project: Path) -> None:
    res = cli(
        "sweep", "grid", "--name", "q", "--param", "n=1,2", "--command", "exit {n}", cwd=project
    )
    assert res.returncode == 0 and res.stdout.count("queued") == 2
    started = cli_json("sweep", "start", "--name", "q", cwd=project)
    assert [r["started"] for r in started] == [True, True]
    import time

    for _ in range(100):
        runs = cli_json("run", "list", "--sweep", "q", cwd=project)
        if all(r["status"] == "failed" for r in runs):
            break
        time.sleep(0.1)
    assert [r["exit_code"] for r in runs] == [1, 2]
    assert cli_json("sweep", "start", "--name", "q", cwd=project) == []


def test_db_flag(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "reg.db"
    typo = cli("run", "list", "--db", str(other), cwd=project)  # a mistyped path: no new file
    assert typo.returncode == 2 and "no such registry" in typo.stderr and str(other) in typo.stderr
    assert not other.exists()
    other.parent.mkdir()
    other.write_bytes(b"")
    empty = cli("run", "list", "--db", str(other), cwd=project)
    assert empty.returncode == 2 and "empty (0 bytes)" in empty.stderr
    assert other.read_bytes() == b""
    assert (
        cli(
            "run", "create", "--name", "a", "--command", "true", "--db", str(other),
            "--create-db", cwd=project,
        ).returncode
        == 0
    )  # fmt: skip
    assert other.exists() and not (project / ".labcoat" / "runs.db").exists()
    assert [r["name"] for r in cli_json("run", "list", "--db", str(other), cwd=project)] == ["a"]
