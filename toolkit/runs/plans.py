"""Experiment plans in markdown: title from the first heading, goal from a ``Goal`` section
(``## Goal`` followed by its first paragraph) or a ``Goal: ...`` line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import InputError

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_GOAL_LINE = re.compile(
    r"^\s*(?:[-*]\s*)?(?:\*\*|__)?goal(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.+)$", re.I
)
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ParsedPlan:
    title: str
    goal: str
    markdown: str


def parse_plan(text: str) -> ParsedPlan:
    lines = text.splitlines()
    title = next((m.group(2) for m in map(_HEADING.match, lines) if m), None)
    if not title:
        raise InputError("plan: no markdown heading found; the first '# Title' line names the plan")
    goal = ""
    for i, line in enumerate(lines):
        match = _GOAL_LINE.match(line)
        if match:
            goal = match.group(1).strip().strip("*_ ")
            break
        heading = _HEADING.match(line)
        if heading and heading.group(2).strip().lower().rstrip(":") in (
            "goal",
            "goals",
            "objective",
        ):
            paragraph: list[str] = []
            for nxt in lines[i + 1 :]:
                if _HEADING.match(nxt) or (not nxt.strip() and paragraph):
                    break
                if nxt.strip():
                    paragraph.append(nxt.strip())
            goal = " ".join(paragraph)
            break
    return ParsedPlan(title=title, goal=goal, markdown=text)


def read_plan(path: Path) -> ParsedPlan:
    if not path.is_file():
        raise InputError(f"plan: {path} is {'a directory' if path.is_dir() else 'missing'}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"plan: {path} is not UTF-8 text ({exc.reason})") from None
    return parse_plan(text)


def slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")[:80] or "plan"
