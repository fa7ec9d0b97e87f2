"""Shared helpers for the plugin-layer tests (manifests, markdown, Claude Code and Codex discovery)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# One entry point per situation (issue 15): each skill is the only route for its moment; stages and
# detail live in its references/. Agents are dispatched by a skill, never an entry point of their own.
EXPECTED_SKILLS = [
    "using-labcoat",
    "ml-brainstorming",
    "experiment-planning",
    "grounded-implementation-plan",
    "data-preparation",
    "validation-pyramid",
    "dry-debugging",
    "train-debug",
    "training-handoff",
    "watchdog",
    "ml-iteration",
    "autoresearch",
    "verification",
    "scaling-analysis",
    "hyperparam-sweep",
]
EXPECTED_AGENTS = [
    "diagnostician",
    "scaling-advisor",
    "optimization-guru",
    "fine-tuning-advisor",
    "researcher",
    "plan-reviewer",
]
# thin routes to one skill each; names distinct from every skill
EXPECTED_COMMANDS = ["validate", "dry-debug", "plan", "watch"]
# skills whose gate an agent is tempted to skip: they carry excuses and red flags
GATE_SKILLS = ["validation-pyramid", "verification", "train-debug", "autoresearch"]

CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.328"
CODEX = "@openai/codex@0.169.0"
NPX_TIMEOUT_S = 300  # first fetch of a package; cached runs take seconds

LAUNCHER = ROOT / "bin" / "labcoat"
# labcoat's own environment for the launcher tests: one per checkout, reused across runs (its
# folder name carries the requirements' hash, so a change of requirements builds a new one)
LAUNCHER_HOME = ROOT / ".labcoat" / "launcher-home"


def launcher_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, LABCOAT_HOME=str(LAUNCHER_HOME))
    env.update(extra)
    return env


NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DESCRIPTION_MAX = 150  # Codex's per-skill budget; Claude Code allows more
# a description names the moment to act: "Use when a run went NaN...", "Use before the first run..."
DESCRIPTION_STARTS = ("Use when", "Use before")


def skill_files() -> list[Path]:
    return sorted((ROOT / "skills").glob("*/SKILL.md"))


def agent_files() -> list[Path]:
    return sorted((ROOT / "agents").glob("*.md"))


def command_files() -> list[Path]:
    return sorted((ROOT / "commands").glob("*.md"))


def markdown_files() -> list[Path]:
    """Every markdown file the plugin ships or documents itself with."""
    files = [ROOT / "CLAUDE.md", ROOT / ".claude" / "CLAUDE.md", ROOT / "README.md"]
    for folder in ("skills", "agents", "commands", "knowledge", "docs"):
        files += sorted((ROOT / folder).rglob("*.md"))
    # a skill's references/ link to a knowledge doc or agent is that file: checked once, at source
    return [f for f in files if f.is_file() and not f.is_symlink()]


def frontmatter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), (
        f"{path.relative_to(ROOT)}: no frontmatter (must start with ---)"
    )
    end = text.find("\n---", 4)
    assert end > 0, f"{path.relative_to(ROOT)}: frontmatter is not closed by ---"
    data = yaml.safe_load(text[4:end])
    assert isinstance(data, dict), f"{path.relative_to(ROOT)}: frontmatter is not a mapping"
    return data


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


_NETWORK_HINTS = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "ECONNRESET",
    "network",
    "getaddrinfo",
    "403 Forbidden",
    "E404",
    "ERR_SOCKET",
)
_npx_ok: dict[str, str | None] = {}


def require_npx(package: str) -> None:
    """Skip (with the reason printed) when npx is missing or cannot fetch ``package``."""
    if package not in _npx_ok:
        reason = None
        if shutil.which("npx") is None:
            reason = "npx is not on PATH"
        else:
            try:
                proc = subprocess.run(
                    ["npx", "-y", package, "--version"],
                    capture_output=True,
                    text=True,
                    timeout=NPX_TIMEOUT_S,
                    cwd=ROOT,
                )
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    reason = (
                        f"npx could not run {package} (registry unreachable?): {' | '.join(tail)}"
                    )
            except subprocess.TimeoutExpired:
                reason = f"npx timed out fetching {package} after {NPX_TIMEOUT_S}s"
        _npx_ok[package] = reason
    if _npx_ok[package]:
        print(f"SKIP: {_npx_ok[package]}")
        pytest.skip(_npx_ok[package])


def npx(
    package: str, *args: str, cwd: Path = ROOT, env: dict | None = None
) -> subprocess.CompletedProcess:
    require_npx(package)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        ["npx", "-y", package, *args],
        capture_output=True,
        text=True,
        timeout=NPX_TIMEOUT_S,
        cwd=cwd,
        env=full_env,
    )
