"""(a) Claude Code's own validator accepts the plugin and its marketplace."""

import functools

from .conftest import CLAUDE_CODE, EXPECTED_AGENTS, EXPECTED_COMMANDS, EXPECTED_SKILLS, ROOT, npx


@functools.cache
def validate(*flags):
    proc = npx(CLAUDE_CODE, "plugin", "validate", *flags, str(ROOT))
    return proc.returncode, proc.stdout + proc.stderr


def test_claude_plugin_validate_has_no_errors():
    code, out = validate()
    assert code == 0, f"claude plugin validate exited {code}:\n{out[-6000:]}"
    assert "Validation passed" in out, out[-6000:]


def test_claude_plugin_validate_strict():
    """--strict turns warnings into errors. A CLAUDE.md at the plugin root is one ("not loaded as
    project context" in Claude Code 2.1.328), so the repo's CLAUDE.md lives in .claude/."""
    code, out = validate("--strict")
    assert code == 0, f"claude plugin validate --strict exited {code}:\n{out[-6000:]}"
    assert "Validation passed" in out, out[-6000:]


def test_always_on_cost_and_inventory():
    """`plugin details`: ≤900 always-on tokens, listing exactly the skills and agents the plugin
    ships (recorded in docs/benchmarks.md)."""
    import re

    proc = npx(CLAUDE_CODE, "--plugin-dir", str(ROOT), "plugin", "details", "labcoat")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    tokens = int(re.search(r"Always-on:\s+~([\d,]+) tok", out).group(1).replace(",", ""))
    skills = int(re.search(r"Skills \((\d+)\)", out).group(1))
    agents = int(re.search(r"Agents \((\d+)\)", out).group(1))
    assert tokens <= 900, f"always-on cost {tokens} tokens"
    # the inventory lists the slash commands among the skills
    expected = (len(EXPECTED_SKILLS) + len(EXPECTED_COMMANDS), len(EXPECTED_AGENTS))
    assert (skills, agents) == expected, (skills, agents)

