"""(b) skill, agent and command frontmatter follows the shared conventions."""

import pytest

from .conftest import (
    DESCRIPTION_MAX,
    DESCRIPTION_STARTS,
    NAME_RE,
    agent_files,
    command_files,
    frontmatter,
    rel,
    skill_files,
)


def check_description(path, data):
    desc = data.get("description")
    assert isinstance(desc, str) and desc.strip(), f"{rel(path)}: description missing"
    assert desc.startswith(DESCRIPTION_STARTS), (
        f"{rel(path)}: description must start {' or '.join(DESCRIPTION_STARTS)}: {desc!r}"
    )
    assert len(desc) <= DESCRIPTION_MAX, (
        f"{rel(path)}: description is {len(desc)} chars (max {DESCRIPTION_MAX})"
    )
    assert "<" not in desc and ">" not in desc, f"{rel(path)}: description has angle brackets"


@pytest.mark.parametrize("path", skill_files(), ids=lambda p: p.parent.name)
def test_skill_frontmatter(path):
    data = frontmatter(path)
    assert data.get("name") == path.parent.name, (
        f"{rel(path)}: name {data.get('name')!r} != folder {path.parent.name!r}"
    )
    assert NAME_RE.match(data["name"]), f"{rel(path)}: name must be lowercase-hyphen"
    check_description(path, data)


@pytest.mark.parametrize("path", agent_files(), ids=lambda p: p.stem)
def test_agent_frontmatter(path):
    data = frontmatter(path)
    assert data.get("name") == path.stem, (
        f"{rel(path)}: name {data.get('name')!r} != file stem {path.stem!r}"
    )
    assert NAME_RE.match(data["name"]), f"{rel(path)}: name must be lowercase-hyphen"
    check_description(path, data)
    assert data.get("tools"), f"{rel(path)}: tools missing"


@pytest.mark.parametrize("path", command_files(), ids=lambda p: p.stem)
def test_command_frontmatter(path):
    data = frontmatter(path)
    assert NAME_RE.match(path.stem), f"{rel(path)}: command file name must be lowercase-hyphen"
    assert isinstance(data.get("description"), str) and data["description"].strip(), (
        f"{rel(path)}: description missing"
    )
    body = path.read_text(encoding="utf-8").split("\n---", 1)[1]
    assert "labcoat:" in body, f"{rel(path)}: a command must invoke a labcoat skill"
