"""PL006/PL007: a VRAM breakdown exists and its components add up to its total.

The breakdown lives in a section whose heading mentions VRAM, GPU memory or a memory
budget/breakdown/estimate. Inside it, two forms are read:

- markdown tables: the first column names the component; the amount is read from the last
  column whose header mentions GB/GiB/MB/MiB/VRAM/memory (else from the row's cells, last first);
- ``label: amount`` / ``label = amount`` lines and list items (``- Weights (bf16): 16.1 GB``).

An amount is a number with a unit GB, GiB, MB, MiB, TB or TiB (a unit in the column header
counts). Where a cell or line has ``=``, the first amount after the last ``=`` is the result
(``8.03e9 x 2 B = 16.1 GB``); otherwise the first amount. A row or line whose label says
``total`` or ``sum`` is the stated total for the components listed since the table started or
since the previous total. Everything is converted to GB (10^9 bytes) before adding; the stated
total must be within 5% of the sum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.plan.document import Document
from toolkit.plan.rules import Finding, finding

TOLERANCE = 0.05

VRAM_SECTION_RE = re.compile(
    r"vram|gpu memory|memory (?:budget|breakdown|estimate|footprint|plan)", re.IGNORECASE
)
GPU_PLAN_RE = re.compile(r"\bGPUs?\b|\bCUDA\b|\bVRAM\b", re.IGNORECASE)

_UNIT_GB = {
    "gb": 1.0,
    "gib": 1.073741824,
    "mb": 1e-3,
    "mib": 1.048576e-3,
    "tb": 1e3,
    "tib": 1099.511627776,
}
_AMOUNT_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(GiB|GB|MiB|MB|TiB|TB)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?![\d.]*\s*[A-Za-z(×x*])")
_HEADER_UNIT_RE = re.compile(r"\b(GiB|GB|MiB|MB|TiB|TB)\b", re.IGNORECASE)
_MEM_HEADER_RE = re.compile(r"\b(GiB|GB|MiB|MB|TiB|TB)\b|vram|memory|size", re.IGNORECASE)
_TOTAL_RE = re.compile(r"\btotal\b|\bsum\b", re.IGNORECASE)
_LINE_RE = re.compile(
    r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?P<label>[^:=|]{1,80}?)\s*[:=]\s*(?P<rest>.+)$"
)


@dataclass(frozen=True)
class Item:
    """One component or total: ``gb`` in GB (10^9 bytes), at 1-based ``line``."""

    line: int
    label: str
    gb: float
    is_total: bool


def _to_gb(number: str, unit: str) -> float:
    return float(number.replace(",", "")) * _UNIT_GB[unit.lower()]


def amount_gb(text: str, default_unit: str | None = None) -> float | None:
    """The amount in ``text`` in GB (see module doc for which one), or ``None``."""
    tail = text.rsplit("=", 1)[-1] if "=" in text else text
    match = _AMOUNT_RE.search(tail)
    if match:
        return _to_gb(match.group(1), match.group(2))
    if default_unit:
        number = _NUMBER_RE.search(tail)
        if number:
            return _to_gb(number.group(1), default_unit)
    return None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _label(text: str) -> str:
    return text.replace("**", "").replace("`", "").strip()


def _table_items(rows: list[tuple[int, str]]) -> list[Item]:
    header = _cells(rows[0][1])
    mem_cols = [i for i, h in enumerate(header) if i > 0 and _MEM_HEADER_RE.search(h)]
    col = mem_cols[-1] if mem_cols else None
    unit_match = _HEADER_UNIT_RE.search(header[col]) if col is not None else None
    unit = unit_match.group(1) if unit_match else None
    items = []
    for number, line in rows[1:]:
        cells = _cells(line)
        if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue
        if len(cells) < 2:
            continue
        cells = [c.replace("**", "").replace("`", "") for c in cells]
        candidates = [cells[col]] if col is not None and col < len(cells) else cells[:0:-1]
        gb = next((g for c in candidates if (g := amount_gb(c, unit)) is not None), None)
        if gb is not None:
            label = _label(cells[0])
            items.append(Item(number, label, gb, bool(_TOTAL_RE.search(label))))
    return items


def _section_items(doc: Document, start: int, end: int) -> list[list[Item]]:
    """Groups of items (each a table, or a run of lines) in one section, in order."""
    groups: list[list[Item]] = [[]]
    number = start + 1
    while number <= end:
        text = doc.text(number)
        if text.lstrip().startswith("|"):
            rows = []
            while number <= end and doc.text(number).lstrip().startswith("|"):
                rows.append((number, doc.text(number)))
                number += 1
            groups += [_table_items(rows), []]
            continue
        match = _LINE_RE.match(text.replace("**", ""))
        if match:
            gb = amount_gb(match.group("rest"))
            if gb is not None:
                label = _label(match.group("label"))
                groups[-1].append(Item(number, label, gb, bool(_TOTAL_RE.search(label))))
        number += 1
    return [g for g in groups if g]


def _compare(components: list[Item], total: Item) -> Finding | None:
    summed = sum(item.gb for item in components)
    if total.gb <= 0:
        return None
    off = abs(summed - total.gb) / total.gb
    if off <= TOLERANCE:
        return None
    parts = " + ".join(f"{item.gb:.3g}" for item in components)
    return finding(
        "PL007",
        total.line,
        f"VRAM components add up to {summed:.3g} GB ({parts}) but '{total.label}' says "
        f"{total.gb:.3g} GB ({100 * off:.0f}% off, tolerance {100 * TOLERANCE:.0f}%)",
    )


def check_vram(doc: Document) -> list[Finding]:
    """PL006 when a GPU plan has no breakdown with a total; PL007 per total that does not add up."""
    out: list[Finding] = []
    checked = 0
    for _, start, end in doc.sections(VRAM_SECTION_RE):
        for group in _section_items(doc, start, end):
            components: list[Item] = []
            for item in group:
                if not item.is_total:
                    components.append(item)
                    continue
                if components:
                    checked += 1
                    problem = _compare(components, item)
                    if problem:
                        out.append(problem)
                components = []
    is_gpu_plan = any(GPU_PLAN_RE.search(text) for text in doc.lines)
    if checked == 0 and is_gpu_plan:
        sections = doc.sections(VRAM_SECTION_RE)
        line = sections[0][0].line if sections else 1
        what = (
            "the VRAM section lists no components with amounts followed by a total"
            if sections
            else "no VRAM breakdown: add a 'VRAM' section with components (weights, "
            "gradients, optimizer states, activations ...) in GB and a Total line"
        )
        out.append(finding("PL006", line, what))
    return out
