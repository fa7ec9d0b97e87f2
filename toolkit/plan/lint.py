"""Run every plan-lint rule over a markdown plan and filter the findings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from toolkit.errors import InputError
from toolkit.plan.completeness import (
    check_env_detection,
    check_estimate,
    check_export,
    check_failure_handling,
    check_risks,
    check_serving_gate,
    check_sweep,
)
from toolkit.plan.deps import check_dependencies
from toolkit.plan.document import Document, parse
from toolkit.plan.grounding import check_citations, check_dry_run, check_steps
from toolkit.plan.rules import Finding
from toolkit.plan.text_rules import (
    check_launch_lines,
    check_stubs,
    check_success_criteria,
    check_vague,
)
from toolkit.plan.throughput import check_lora, check_mfu
from toolkit.plan.vram import check_vram

MARKDOWN_SUFFIXES = (".md", ".markdown")

CHECKS: tuple[Callable[[Document], list[Finding]], ...] = (
    check_steps,
    check_citations,
    check_dependencies,
    check_vram,
    check_mfu,
    check_lora,
    check_success_criteria,
    check_dry_run,
    check_vague,
    check_stubs,
    check_launch_lines,
    check_export,
    check_serving_gate,
    check_failure_handling,
    check_risks,
    check_sweep,
    check_estimate,
    check_env_detection,
)


def lint_text(
    text: str, select: set[str] | None = None, ignore: set[str] | None = None
) -> list[Finding]:
    """Findings for plan ``text``, sorted by line then code; ``select``/``ignore`` are codes."""
    doc = parse(text)
    findings = [f for check in CHECKS for f in check(doc)]
    if select is not None:
        findings = [f for f in findings if f.code in select]
    if ignore:
        findings = [f for f in findings if f.code not in ignore]
    return sorted(findings, key=lambda f: (f.line, f.code, f.message))


def read_plan(path: Path | str) -> str:
    """The text of a markdown plan; :class:`InputError` for a missing, non-markdown, binary or
    empty file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file; expected a markdown plan (PLAN.md)")
    if not path.is_file():
        raise InputError(f"{path} is not a file; expected a markdown plan (PLAN.md)")
    if path.suffix.lower() not in MARKDOWN_SUFFIXES:
        raise InputError(f"{path}: not a markdown file; expected a .md or .markdown plan")
    data = path.read_bytes()
    if b"\0" in data:
        raise InputError(f"{path}: binary data; expected a markdown text plan")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise InputError(f"{path}: empty; expected a markdown plan")
    return text


def lint_file(
    path: Path | str, select: set[str] | None = None, ignore: set[str] | None = None
) -> list[Finding]:
    """:func:`lint_text` on the plan at ``path`` (see :func:`read_plan` for input errors)."""
    return lint_text(read_plan(path), select, ignore)
