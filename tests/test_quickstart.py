"""The README's two commands and `.ci/run` stay in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick, flags=re.S)


def test_readme_quick_start_has_exactly_two_commands():
    cmds = readme_commands()
    assert len(cmds) == 2, cmds
    setup, tests = cmds
    assert all("\n" not in c for c in cmds), "each quick-start command must be one line"
    for c in cmds:
        assert c.index("torch==2.13.0") < c.index("pip install -q -e"), (
            "pinned torch must come first"
        )
    assert setup.endswith("python -m toolkit.profiling.l0_runner")
    assert tests.endswith("python -m pytest")


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line
        and not line.startswith("#")
        and not line.startswith("set ")
        and not line.startswith("cd ")
    ]
    assert ci_lines == [readme_commands()[1]]


def test_pyproject_declares_a_permissive_torch_range():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.4"' in text and "torch==" not in text


def test_every_toolkit_command_in_the_readme_answers_help():
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    commands = sorted(set(re.findall(r"python -m (toolkit(?:\.\w+)+)((?: [a-z][a-z-]*)?)", text)))
    assert len(commands) >= 8, commands
    for module, verb in commands:
        argv = [sys.executable, "-m", module, *verb.split(), "--help"]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{' '.join(argv[1:])}: exit {proc.returncode}\n{proc.stderr}"
        assert "usage:" in proc.stdout


def test_cli_output_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    # 10 MB of output into `head -n 1`: far past the pipe buffer, so the write really breaks
    code = "from toolkit import cli; cli.run(lambda a: [print('x' * 999) for _ in range(10_000)] and 0, 'p')"
    proc = subprocess.run(
        f'{sys.executable} -c "{code}" | head -n 1', shell=True, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.stdout == "x" * 999 + "\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
