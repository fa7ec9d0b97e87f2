"""CSV readers: plain CSV, Lightning ``CSVLogger`` ``metrics.csv`` (sparse rows) and
TensorBoard's CSV export (``Wall time,Step,Value``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import Run, build_run, step_key


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def read_csv(path: Path, fmt: str = "csv") -> Run:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"{path}: empty file; expected a CSV header and rows")
    reader = csv.reader(text.splitlines())
    header = next(reader)
    header = [h.strip() for h in header]
    if len(header) < 2:
        raise InputError(
            f"{path}:1: header has {len(header)} column; expected a step column and metric columns"
        )
    lowered = [h.lower() for h in header]
    tb_export = lowered[:3] == ["wall time", "step", "value"]
    step_name = "Step" if tb_export else step_key(header)
    step_col = header.index(step_name) if step_name else None
    warnings: list[str] = []
    steps: list[float] = []
    cols: dict[int, tuple[list[int], list[float]]] = {}
    row_no = 0
    for line_no, row in enumerate(reader, start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            warnings.append(
                f"{path}:{line_no}: {len(row)} columns, header has {len(header)}; skipped"
                + (" (truncated last line?)" if line_no == text.count("\n") + 1 else "")
            )
            continue
        if step_col is not None:
            step = _number(row[step_col])
            if step is None or not math.isfinite(step):
                # Lightning writes epoch-end rows with an empty step; use the previous step
                step = steps[-1] if steps else 0.0
        else:
            step = float(row_no)
        row_idx = len(steps)
        steps.append(step)
        row_no += 1
        for j, cell in enumerate(row):
            if j == step_col:
                continue
            value = _number(cell)
            if value is None:
                if cell.strip() and cell.strip().lower() not in ("", "none", "null"):
                    warnings.append(
                        f"{path}:{line_no}: column {header[j]!r}: not a number {cell.strip()!r}; skipped"
                    )
                continue
            col = cols.setdefault(j, ([], []))
            col[0].append(row_idx)
            col[1].append(value)
    if not steps:
        raise InputError(f"{path}: no data rows matching the {len(header)}-column header")
    step_arr = np.asarray(steps)
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, (idx, values) in cols.items():
        name = header[j]
        if tb_export:
            if name != "Value":
                continue
            name = path.stem
        columns[name] = (step_arr[np.asarray(idx)].astype(np.int64), np.asarray(values))
    if not columns:
        raise InputError(f"{path}: no numeric metric columns; header is {', '.join(header)}")
    return build_run(path, fmt, columns, warnings)
