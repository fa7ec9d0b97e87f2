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


def test_always_on_plus_session_start_injection_within_budget():
    """What every session pays: the listing (`plugin details` always-on) plus what the SessionStart
    hook injects (router, gates, one status line) <= 1,300 tokens. The injected text is priced at 4
    characters a token, the ratio `plugin details` itself uses (it prices a skill body of N
    characters at ~N/4 on invoke)."""
    import os
    import re
    import subprocess

    from .conftest import launcher_env

    proc = npx(CLAUDE_CODE, "--plugin-dir", str(ROOT), "plugin", "details", "labcoat")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    always_on = int(re.search(r"Always-on:\s+~([\d,]+) tok", out).group(1).replace(",", ""))
    hooks = ROOT / "hooks" / "hooks.json"
    assert "SessionStart" in hooks.read_text() and re.search(r"Hooks \(1\)\s+SessionStart", out)
    hook = subprocess.run(
        [str(ROOT / "hooks" / "session-start")],
        capture_output=True,
        text=True,
        env=launcher_env(CLAUDE_PLUGIN_ROOT=str(ROOT)),
        timeout=120,
    )
    assert hook.returncode == 0, hook.stderr
    injected = -(-len(hook.stdout) // 4)
    print(f"always-on {always_on} + injected {injected} = {always_on + injected} tokens")
    assert os.access(ROOT / "hooks" / "session-start", os.X_OK)
    assert always_on + injected <= 1300, (always_on, injected)
