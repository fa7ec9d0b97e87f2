"""Grounding gates on steps: citations to specific pages, quotes near them, a dry-run step."""

from __future__ import annotations

import re

from toolkit.plan.document import Document, quotes, urls
from toolkit.plan.rules import Finding, finding

#: A quote counts for a citation when it starts within this many lines of the citation's line.
QUOTE_WINDOW_LINES = 3
MIN_QUOTE_WORDS = 5

DRY_RUN_RE = re.compile(
    r"dry[- ]?run|smoke[- ]?test|small subset|tiny subset|sanity run|--max[-_]steps|"
    r"--dry[-_]run|subset of \d",
    re.IGNORECASE,
)


def check_steps(doc: Document) -> list[Finding]:
    """PL001: at least one step is recognised."""
    if doc.steps:
        return []
    return [
        finding(
            "PL001",
            1,
            "no steps found: use '### Step N: ...' (or '## N. ...') headings, or a top-level "
            "numbered list under a 'Steps' heading",
        )
    ]


def check_citations(doc: Document) -> list[Finding]:
    """PL002 (no URL), PL003 (only homepage URLs), PL004 (no quote near a specific URL)."""
    out: list[Finding] = []
    for step in doc.steps:
        found = urls(doc, step.start, step.end)
        label = f"step {step.number} ({step.title.strip()[:50]})"
        if not found:
            out.append(finding("PL002", step.start, f"{label} cites no source URL"))
            continue
        specific = [u for u in found if u.specific]
        if not specific:
            out.append(
                finding(
                    "PL003",
                    found[0].line,
                    f"{label} cites only a homepage ({found[0].url}); link the page (path or "
                    "#anchor) that says it",
                )
            )
            continue
        said = quotes(doc, step.start, step.end, MIN_QUOTE_WORDS)
        near = any(
            abs(q_line - u.line) <= QUOTE_WINDOW_LINES for u in specific for q_line, _ in said
        )
        if not near:
            out.append(
                finding(
                    "PL004",
                    specific[0].line,
                    f"{label} cites {specific[0].url} but quotes no passage of "
                    f"{MIN_QUOTE_WORDS}+ words within {QUOTE_WINDOW_LINES} lines of it",
                )
            )
    return out


def check_dry_run(doc: Document) -> list[Finding]:
    """PL012: some step (or, with no steps, the plan) mentions a dry run / smoke test."""
    if doc.steps:
        for step in doc.steps:
            if any(DRY_RUN_RE.search(doc.text(n)) for n in range(step.start, step.end + 1)):
                return []
        line = doc.steps[0].start
    else:
        if any(DRY_RUN_RE.search(text) for text in doc.lines):
            return []
        line = 1
    return [
        finding(
            "PL012",
            line,
            "no dry-run phase: add a step that runs a dry run / smoke test on a small subset "
            "(e.g. --max-steps 20) before the full run",
        )
    ]
