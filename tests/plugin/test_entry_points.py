"""One entry point per situation, and skills that work where the plugin is installed (issue 15).

A model choosing from the listing must not be able to pick wrong: no command shares a skill's name,
each command routes to exactly one skill, agents are dispatched by a skill. Everything a skill relies
on is reachable from its own folder: its references/, and relative markdown links to the plugin's
knowledge/ and agents/ (both installs hold the whole plugin: Claude Code copies it into its cache,
the Codex install clones it into ~/.agents/skills/labcoat). No symlinks: Claude Code 2.1.328's
`plugin install` drops them (measured by the issue-15 lead). Every agent a skill dispatches has an
inline fallback, a link to the agent's text, for clients without sub-agents (Codex)."""

import re

import pytest

from .conftest import GATE_SKILLS, ROOT, agent_files, command_files, frontmatter, rel, skill_files

SKILLS = {p.parent.name for p in skill_files()}
AGENTS = {p.stem for p in agent_files()}
REF_RE = re.compile(r"(?<![\w@/.-])labcoat:([a-z0-9][a-z0-9-]*)")
LINK_RE = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)")
CITED_RE = re.compile(r"(?<![\w/.-])references/([\w.-]+\.md)")
# a path from the repository root, which does not exist next to a user's project or a Codex install
REPO_ROOT_PATH_RE = re.compile(r"(?<![\w./-])knowledge/[\w-]+\.md|\$\{?CLAUDE_PLUGIN_ROOT\}?")
ROUTER_BODY_MAX = 1700  # injected at every session start: route list + 4 gates + toolkit paragraph


def skill_texts(skill: str) -> list:
    """The skill's own markdown: SKILL.md and its references/."""
    return sorted((ROOT / "skills" / skill).rglob("*.md"))


def linked(path) -> set:
    """Resolved targets of the relative markdown links in ``path``."""
    text = path.read_text(encoding="utf-8")
    return {(path.parent / t).resolve() for t in LINK_RE.findall(text) if "://" not in t}


def body(path) -> str:
    return path.read_text(encoding="utf-8").split("\n---\n", 1)[1]


def test_no_command_shares_a_name_with_a_skill():
    clash = sorted({p.stem for p in command_files()} & SKILLS)
    assert not clash, f"commands named like skills (two entry points, one name): {clash}"


@pytest.mark.parametrize("path", command_files(), ids=lambda p: p.stem)
def test_command_routes_to_exactly_one_skill(path):
    named = set(REF_RE.findall(body(path)))
    assert len(named) == 1 and named <= SKILLS, (
        f"{rel(path)}: a command is a thin route to one skill; it names {sorted(named)}"
    )


def test_every_knowledge_doc_is_reachable_from_a_skill():
    reached = {target for s in SKILLS for p in skill_texts(s) for target in linked(p)}
    orphans = [
        rel(k) for k in sorted((ROOT / "knowledge").glob("*.md")) if k.resolve() not in reached
    ]
    assert not orphans, (
        f"knowledge docs no skill links to: {orphans} "
        "(link it from the skill that relies on it: [doc.md](../../knowledge/doc.md))"
    )


def test_no_symlinks_in_skills():
    links = [rel(p) for p in (ROOT / "skills").rglob("*") if p.is_symlink()]
    assert not links, (
        f"Claude Code's plugin install drops symlinks; link in markdown instead: {links}"
    )


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_cited_references_exist_in_the_skill_folder(skill):
    missing = []
    for path in skill_texts(skill):
        for name in CITED_RE.findall(path.read_text(encoding="utf-8")):
            if not (ROOT / "skills" / skill / "references" / name).exists():
                missing.append(f"{rel(path)}: references/{name}")
    assert not missing, "cited as references/FILE but not in the skill's folder:\n" + "\n".join(
        missing
    )


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_every_reference_file_is_cited(skill):
    folder = ROOT / "skills" / skill / "references"
    cited = set()
    for path in skill_texts(skill):
        cited |= set(CITED_RE.findall(path.read_text(encoding="utf-8")))
    unused = [p.name for p in sorted(folder.glob("*.md")) if p.name not in cited]
    assert not unused, f"skills/{skill}/references/ files its texts never cite: {unused}"


def test_no_plugin_root_variable_or_repo_root_paths():
    bad = []
    files = [p for s in sorted(SKILLS) for p in skill_texts(s)]
    files += agent_files() + command_files() + sorted((ROOT / "knowledge").glob("*.md"))
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in REPO_ROOT_PATH_RE.finditer(line):
                bad.append(f"{rel(path)}:{n}: {m.group(0)}")
    assert not bad, (
        "paths that do not resolve from a user's project or a Codex install "
        "(cite references/FILE.md, linked from the skill's folder):\n" + "\n".join(bad)
    )


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_dispatched_agents_have_an_inline_fallback(skill):
    """Codex has no sub-agents: where a skill's text dispatches labcoat:AGENT, the same file links
    the agent's own text, to follow inline."""
    bad = []
    for path in skill_texts(skill):
        targets = linked(path)
        for agent in sorted(set(REF_RE.findall(path.read_text(encoding="utf-8"))) & AGENTS):
            if (ROOT / "agents" / f"{agent}.md").resolve() not in targets:
                bad.append(
                    f"{rel(path)}: names labcoat:{agent} but does not link agents/{agent}.md "
                    "(the inline fallback where there are no sub-agents)"
                )
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", agent_files(), ids=lambda p: p.stem)
def test_agent_is_dispatched_by_a_skill_that_names_it(path):
    desc = frontmatter(path)["description"]
    m = re.match(r"Use when dispatched by ((?:labcoat:[a-z0-9-]+(?: or )?)+)", desc)
    assert m, f"{rel(path)}: description must start 'Use when dispatched by labcoat:SKILL'"
    for skill in REF_RE.findall(m.group(1)):
        assert skill in SKILLS, f"{rel(path)}: dispatched by unknown skill {skill}"
        texts = "".join(p.read_text(encoding="utf-8") for p in skill_texts(skill))
        assert f"labcoat:{path.stem}" in texts, (
            f"{rel(path)} says labcoat:{skill} dispatches it, but that skill never names it"
        )


@pytest.mark.parametrize("skill", GATE_SKILLS)
def test_gate_skill_has_excuses_and_red_flags(skill):
    text = (ROOT / "skills" / skill / "SKILL.md").read_text(encoding="utf-8")
    excuses = text.split("## Excuses and reality", 1)
    assert len(excuses) == 2, f"{skill}: no '## Excuses and reality' table"
    rows = [ln for ln in excuses[1].split("\n## ", 1)[0].splitlines() if ln.startswith('| "')]
    assert len(rows) >= 5, f"{skill}: {len(rows)} excuse rows (want 5 or more)"
    flags = text.split("## Red flags — STOP", 1)
    assert len(flags) == 2, f"{skill}: no '## Red flags — STOP' list"
    items = [ln for ln in flags[1].split("\n## ", 1)[0].splitlines() if ln.startswith("- ")]
    assert len(items) >= 4, f"{skill}: {len(items)} red flags (want 4 or more)"


def test_router_names_every_skill_and_stays_compact():
    path = ROOT / "skills" / "using-labcoat" / "SKILL.md"
    text = body(path)
    unrouted = [s for s in sorted(SKILLS - {"using-labcoat"}) if not re.search(rf"\b{s}\b", text)]
    assert not unrouted, f"skills the router never names: {unrouted}"
    assert "## Hard gates" in text and "## Toolkit" in text
    assert len(text) <= ROUTER_BODY_MAX, (
        f"{rel(path)} body is {len(text)} chars, injected at every session start "
        f"(max {ROUTER_BODY_MAX})"
    )
