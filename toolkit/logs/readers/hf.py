"""Hugging Face Trainer ``trainer_state.json``: ``log_history`` entries keyed by ``step``.

Training entries carry ``loss``, ``learning_rate``, ``grad_norm``; eval entries ``eval_*``;
the final summary entry (``train_runtime``, ``train_loss`` as the run average) is kept as its
own metrics. A truncated file (a crash mid-write) is read up to its last complete entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.readers.jsonl import as_value
from toolkit.logs.series import Run, build_run


def _recover_entries(text: str) -> tuple[list[dict], int] | None:
    """Complete ``log_history`` entries of a truncated file, and the line where reading stopped."""
    key = text.find('"log_history"')
    if key < 0:
        return None
    pos = text.find("[", key)
    if pos < 0:
        return None
    decoder = json.JSONDecoder()
    entries: list[dict] = []
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        if isinstance(obj, dict):
            entries.append(obj)
        pos = end
    return entries, text.count("\n", 0, pos) + 1


def read_hf_state(path: Path) -> Run:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"{path}: empty file; expected a Trainer state JSON with log_history")
    warnings: list[str] = []
    try:
        state = json.loads(text)
        entries = state.get("log_history") if isinstance(state, dict) else None
        if not isinstance(entries, list):
            raise InputError(
                f"{path}: no 'log_history' list; expected a Hugging Face trainer_state.json"
            )
    except json.JSONDecodeError as exc:
        recovered = _recover_entries(text)
        if not recovered or not recovered[0]:
            raise InputError(
                f"{path}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno}); no complete log_history entry to read"
            ) from None
        entries, stop_line = recovered
        warnings.append(
            f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); read {len(entries)} complete log_history entries up to line {stop_line}"
        )
    cols: dict[str, tuple[list[int], list[float]]] = {}
    last_step = 0
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            warnings.append(f"{path}: log_history[{n}] is not an object; skipped")
            continue
        step = entry.get("step", last_step)
        if not isinstance(step, int | float):
            step = last_step
        last_step = int(step)
        for key, value in entry.items():
            if key in ("step", "epoch") or isinstance(value, bool):
                continue
            number = as_value(value)
            if number is not None:
                col = cols.setdefault(key, ([], []))
                col[0].append(last_step)
                col[1].append(number)
    if not cols:
        raise InputError(f"{path}: log_history has no numeric entries")
    columns = {k: (np.asarray(s, dtype=np.int64), np.asarray(v)) for k, (s, v) in cols.items()}
    return build_run(path, "hf_trainer_state", columns, warnings)
