"""(c) every labcoat:<name> cross-reference and every relative link in the markdown resolves."""

import re

import pytest

from .conftest import ROOT, markdown_files, rel

REF_RE = re.compile(r"(?<![\w@/.-])labcoat:([a-z0-9][a-z0-9-]*)")
LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def known_names() -> set[str]:
    names = {p.parent.name for p in (ROOT / "skills").glob("*/SKILL.md")}
    names |= {p.stem for p in (ROOT / "agents").glob("*.md")}
    names |= {p.stem for p in (ROOT / "commands").glob("*.md")}
    return names


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_labcoat_references_resolve(path):
    names = known_names()
    bad = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for name in REF_RE.findall(line):
            if name not in names:
                bad.append(f"{rel(path)}:{n}: labcoat:{name}")
    assert not bad, "unresolved (no skill folder, agent or command of that name):\n" + "\n".join(
        bad
    )


@pytest.mark.parametrize("path", markdown_files(), ids=rel)
def test_relative_links_resolve(path):
    bad = []
    in_fence = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for target in LINK_RE.findall(line) + IMAGE_RE.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # URL, mailto:, in-page anchor
            target = target.split("#", 1)[0]
            if not target:
                continue
            if not (path.parent / target).resolve().exists():
                bad.append(f"{rel(path)}:{n}: {target}")
    assert not bad, "relative links to missing files:\n" + "\n".join(bad)
