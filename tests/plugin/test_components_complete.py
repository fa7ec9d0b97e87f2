"""(g) every skill, agent and command the plugin promises exists."""

from .conftest import EXPECTED_AGENTS, EXPECTED_COMMANDS, EXPECTED_SKILLS, ROOT


def test_all_skills_exist():
    missing = [s for s in EXPECTED_SKILLS if not (ROOT / "skills" / s / "SKILL.md").is_file()]
    assert not missing, f"skills without skills/<name>/SKILL.md: {missing}"


def test_all_agents_exist():
    missing = [a for a in EXPECTED_AGENTS if not (ROOT / "agents" / f"{a}.md").is_file()]
    assert not missing, f"missing agents: {missing}"


def test_all_commands_exist():
    missing = [c for c in EXPECTED_COMMANDS if not (ROOT / "commands" / f"{c}.md").is_file()]
    assert not missing, f"missing commands: {missing}"
