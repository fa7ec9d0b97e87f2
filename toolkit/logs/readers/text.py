"""Plain-text training logs: ``key=value`` / ``key: value`` pairs per line.

Handles ``step=10 loss=2.31 lr=3e-4``, ``step 10 | loss: 2.31``, and Megatron's
``iteration 100/ 1000 | learning rate: 1.0E-04 | lm loss: 2.3E+00 | grad norm: 1.2 |``.
A line's step is its ``step``/``iter``/``iteration`` value; lines without one take the next
row number. Lines with no pair are ignored (counted in a warning).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import Run, build_run

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)"
_PAIR = re.compile(
    rf"(?<![\w./-])([A-Za-z_][\w./-]*)\s*(?:=|:\s)\s*({_NUM})(?![\w.])", re.IGNORECASE
)
_SEGMENT = re.compile(rf"^\s*([A-Za-z_][\w ./-]*?)\s*[:=]\s*({_NUM})\b", re.IGNORECASE)
_STEP = re.compile(r"\b(?:global_step|step|iteration|iter)\b\s*[=:]?\s*(\d+)", re.IGNORECASE)
_STEP_KEYS = {"step", "global_step", "iteration", "iter"}


def parse_line(line: str) -> tuple[int | None, dict[str, float]]:
    pairs: dict[str, float] = {}
    rest = [line]
    if line.count("|") >= 2:  # Megatron-style segments: multi-word keys
        rest = []
        for segment in line.split("|"):
            match = _SEGMENT.match(segment)
            if match:
                pairs[match.group(1).strip()] = float(match.group(2))
            else:
                rest.append(segment)
    for part in rest:
        for key, value in _PAIR.findall(part):
            pairs.setdefault(key, float(value))
    step = None
    match = _STEP.search(line)
    if match:
        step = int(match.group(1))
    for key in list(pairs):
        if key.lower() in _STEP_KEYS:
            step = int(pairs.pop(key))
    return step, pairs


def read_text(path: Path) -> Run:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"{path}: empty file; expected lines with key=value or key: value pairs")
    cols: dict[str, tuple[list[int], list[float]]] = {}
    row = 0
    skipped = 0
    last_step = -1
    for line in text.splitlines():
        step, pairs = parse_line(line)
        if not pairs:
            skipped += 1
            continue
        if step is None:
            step = last_step + 1 if last_step >= 0 else row
        last_step = step
        row += 1
        for key, value in pairs.items():
            col = cols.setdefault(key, ([], []))
            col[0].append(step)
            col[1].append(value)
    if not cols:
        raise InputError(f"{path}: no 'key=value' or 'key: value' pairs with numbers on any line")
    warnings = [f"{path}: {skipped} line(s) without key=value pairs ignored"] if skipped else []
    columns = {k: (np.asarray(s, dtype=np.int64), np.asarray(v)) for k, (s, v) in cols.items()}
    return build_run(path, "text", columns, warnings)
