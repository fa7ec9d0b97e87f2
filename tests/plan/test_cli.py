"""``python -m toolkit.plan`` as a user runs it: output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")
GOOD = FIXTURES / "good_llama3_8b_lora.md"
BAD_VRAM = FIXTURES / "bad_PL007_vram_arithmetic.md"


def run_plan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "toolkit.plan", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_clean_plan_exits_0() -> None:
    result = run_plan("lint", GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


def test_findings_table_exits_1() -> None:
    result = run_plan("lint", BAD_VRAM)
    assert result.returncode == 1
    header = result.stdout.splitlines()[0].split()
    assert header == ["line", "code", "severity", "rule", "message"]
    assert "PL007" in result.stdout and "1 error(s), 0 warning(s)" in result.stdout


def test_findings_json() -> None:
    result = run_plan("lint", BAD_VRAM, "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["errors"] == 1 and data["warnings"] == 0
    (finding,) = data["findings"]
    assert set(finding) == {"code", "severity", "line", "message"}
    assert finding["code"] == "PL007" and finding["line"] > 0


def test_select_and_ignore_flags() -> None:
    assert run_plan("lint", BAD_VRAM, "--ignore", "PL007").returncode == 0
    assert run_plan("lint", BAD_VRAM, "--select", "PL01").returncode == 0
    assert run_plan("lint", BAD_VRAM, "--select", "PL00").returncode == 1


def test_rules_lists_every_code_with_doc() -> None:
    table = run_plan("rules")
    assert table.returncode == 0
    for n in range(1, 24):
        assert f"PL{n:03d}" in table.stdout
    rules = json.loads(run_plan("rules", "--format", "json").stdout)
    assert [r["code"] for r in rules] == [f"PL{n:03d}" for n in range(1, 24)]
    assert all(r["doc"] and r["name"] and r["severity"] in ("error", "warning") for r in rules)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("missing.md", None, "no such file"),
        ("plan.txt", "# Plan\n", "not a markdown file"),
        ("empty.md", "  \n\n", "empty"),
        ("binary.md", b"\x00\x01\x02", "binary"),
        ("latin1.md", "caf\xe9".encode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, name: str, content: str | bytes | None, needle: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run_plan("lint", path)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("python -m toolkit.plan: error: ") and needle in line


@pytest.mark.parametrize(
    "args",
    [[], ["lint"], ["lint", str(GOOD), "--select", "PL999"], ["lint", str(GOOD), "--format", "x"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_plan(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_directory_exits_2(tmp_path: Path) -> None:
    assert run_plan("lint", tmp_path).returncode == 2
