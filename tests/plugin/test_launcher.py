"""bin/labcoat: one mapping to `python -m toolkit...`, the right interpreter, no shadowing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from toolkit import launcher

from .conftest import LAUNCHER, ROOT, launcher_env


def run(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=launcher_env(**env),
        timeout=600,
    )


def test_help_lists_every_area():
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    for area in ("compute", "hardware", "logs", "static.check", "profiling.l0_runner", "runs"):
        assert f"\n  {area} " in proc.stdout, proc.stdout


def test_unknown_command_is_a_usage_error_naming_it():
    proc = run("logz", "analyze")
    assert proc.returncode == 2
    assert "unknown command 'logz'" in proc.stderr and "Traceback" not in proc.stderr
    assert "logs" in proc.stderr  # lists the real areas


def test_runs_exactly_python_dash_m(tmp_path):
    """Same output and exit code as `python -m toolkit.compute kv-cache ...` in the checkout."""
    args = [
        "compute",
        "kv-cache",
        "--preset",
        "llama-3-8b",
        "--context",
        "4096",
        "--format",
        "json",
    ]
    direct = subprocess.run(
        [sys.executable, "-m", "toolkit." + args[0], *args[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    via = run(*args, cwd=tmp_path)
    assert direct.returncode == 0 and direct.stdout.startswith("{"), direct.stderr
    assert (via.returncode, via.stdout) == (direct.returncode, direct.stdout), via.stderr


def test_a_users_toolkit_folder_does_not_shadow_labcoat(tmp_path):
    """The user's project has toolkit/ and toolkit/logs/ of its own; both interpreters ignore them."""
    (tmp_path / "toolkit" / "logs").mkdir(parents=True)
    (tmp_path / "toolkit" / "__init__.py").write_text(
        "raise ImportError('user toolkit imported')\n"
    )
    (tmp_path / "toolkit" / "logs" / "__init__.py").write_text("")
    light = run("logs", "analyze", "--help", cwd=tmp_path)
    assert light.returncode == 0, light.stderr
    user = run("--python", sys.executable, "profiling.l0_runner", "--help", cwd=tmp_path)
    assert user.returncode == 0, user.stderr
    assert "--script" in user.stdout


def test_user_code_commands_say_which_python_and_need_torch(tmp_path):
    """An interpreter without torch gets one clear line, not an ImportError traceback."""
    venv = tmp_path / "notorch"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = run(
        "profiling.l0_runner", "--help", cwd=tmp_path, LABCOAT_PYTHON=str(venv / "bin/python")
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot import torch" in proc.stderr and "LABCOAT_PYTHON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_interpreter_precedence(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    conda = tmp_path / "conda"
    (conda / "bin").mkdir(parents=True)
    (conda / "bin" / "python").write_text("")
    env = {"VIRTUAL_ENV": str(venv), "CONDA_PREFIX": str(conda), "PATH": "/usr/bin"}
    assert launcher.user_interpreter(None, env, tmp_path).why == "VIRTUAL_ENV"
    assert launcher.user_interpreter(None, {**env, "VIRTUAL_ENV": ""}, tmp_path).why == (
        "CONDA_PREFIX"
    )
    pinned = launcher.user_interpreter(None, {**env, "LABCOAT_PYTHON": sys.executable}, tmp_path)
    assert pinned.path == sys.executable and pinned.why == "LABCOAT_PYTHON"
    assert launcher.user_interpreter(sys.executable, env, tmp_path).why == "--python"
    project = tmp_path / "proj"
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").write_text("")
    (project / ".venv" / "pyvenv.cfg").write_text("")
    found = launcher.user_interpreter(None, {"PATH": "/usr/bin"}, project)
    assert found.path == str(project / ".venv" / "bin" / "python")
    with pytest.raises(launcher.LaunchError, match="does not exist"):
        launcher.user_interpreter(str(tmp_path / "nope" / "python"), env, tmp_path)


def test_data_dir_survives_plugin_updates():
    """Claude Code keeps ~/.claude/plugins/data/<plugin>-<marketplace> across versions; the
    versioned cache folder is replaced on update."""
    root = Path("/h/.claude/plugins/cache/labcoat/labcoat/0.1.0")
    assert launcher.data_dir({"HOME": "/h"}, root) == Path(
        "/h/.claude/plugins/data/labcoat-labcoat"
    )
    assert launcher.data_dir({"CLAUDE_PLUGIN_DATA": "/d", "HOME": "/h"}, root) == Path("/d")
    assert launcher.data_dir({"LABCOAT_HOME": "/l", "CLAUDE_PLUGIN_DATA": "/d"}, root) == Path("/l")
    assert launcher.data_dir({"HOME": "/h"}, Path("/src/labcoat")) == Path(
        "/h/.local/share/labcoat"
    )


def test_requirements_come_from_pyproject_without_torch():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = launcher.requirements()
    names = {launcher._req_name(r) for r in reqs}
    assert "torch" not in names and "matplotlib" in names
    assert set(data["project"]["dependencies"]) - set(reqs) == {
        r for r in data["project"]["dependencies"] if launcher._req_name(r) == "torch"
    }
    # Python 3.10 has no tomllib: the small reader gives the same arrays on the real file
    mini = launcher._mini_toml((ROOT / "pyproject.toml").read_text())
    assert mini["project"]["dependencies"] == data["project"]["dependencies"]
    assert mini["project"]["optional-dependencies"] == data["project"]["optional-dependencies"]
    assert mini["tool"]["labcoat"] == data["tool"]["labcoat"]


def test_doctor_reports_in_one_line():
    proc = run("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 1 and proc.stdout.startswith("labcoat launcher ready")


def test_python_310_reader_ignores_comments_with_quotes():
    text = (
        '[project]\ndependencies = [\n    "a>=1",  # it\'s "quoted"\n    "b",\n]\n'
        '# a comment with \' and "\n[tool.labcoat]\nlauncher-extras = ["plot"]  # don\'t\n'
    )
    assert launcher._mini_toml(text) == tomllib.loads(text)
