"""Weights & Biases offline runs (``wandb/offline-run-*/run-*.wandb``), read with W&B's own reader.

The ``.wandb`` file is W&B's protobuf transaction log. Since wandb 0.2x the reader lives in the
Go ``wandb-core`` shipped inside the wheel; ``wandb leet inspect --json`` (run here as
``python -m wandb``) prints each record as one JSON object. Every ``history`` record becomes
one point per metric at its step (``_step``); keys starting with ``_`` (runtime, timestamp)
are W&B's own and skipped, nested keys are joined with ``.`` as W&B does, ``"NaN"`` / ``"Infinity"`` are
the floats they name. Optional extra ``wandb``. The file is only read.

PATH is the ``.wandb`` file, its run folder, or a ``wandb/`` folder (its newest offline run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import Run, build_run

READ_TIMEOUT_S = 300.0
_SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def wandb_file(path: Path) -> Path | None:
    """The ``.wandb`` file ``path`` names, or None when ``path`` is no W&B run."""
    if path.is_file():
        return path if path.suffix == ".wandb" else None
    if not path.is_dir():
        return None
    found = sorted(path.glob("run-*.wandb"))
    if found:
        return found[-1]
    runs = sorted(path.glob("offline-run-*/run-*.wandb")) + sorted(path.glob("run-*/run-*.wandb"))
    if runs:
        return max(runs, key=lambda p: p.parent.name.split("-", 2)[-1])
    return None


def _flatten(item: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _SPECIAL.get(value)
    return None


def read_wandb(path: Path) -> Run:
    file = wandb_file(path)
    if file is None:
        raise InputError(f"{path}: no W&B run file (run-*.wandb) here")
    try:
        import wandb  # noqa: F401  (only to say clearly when it is missing)
    except ImportError:
        raise InputError(
            "reading a W&B offline run needs wandb: pip install 'labcoat[wandb]'"
        ) from None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(file)],
            capture_output=True, text=True, timeout=READ_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise InputError(f"{file}: W&B's reader did not finish in {READ_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"{file}: W&B's reader failed (exit {proc.returncode}): {tail}")
    cols: dict[str, tuple[list[int], list[float]]] = {}
    warnings: list[str] = []
    for n, line in enumerate(proc.stdout.splitlines(), 1):
        if '"history"' not in line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.append(f"{file}: record {n} is not JSON; skipped")
            continue
        if record.get("type") != "history":
            continue
        hist = record.get("history") or {}
        item = _flatten(hist.get("item") or {})
        step = item.get("_step", (hist.get("step") or {}).get("num"))
        if not isinstance(step, int | float):
            warnings.append(f"{file}: history record {record.get('num')} has no step; skipped")
            continue
        for key, value in item.items():
            if key.startswith("_"):
                continue
            number = _number(value)
            if number is None:
                continue  # media, tables, histograms: not scalars
            col = cols.setdefault(key, ([], []))
            col[0].append(int(step))
            col[1].append(number)
    if not cols:
        raise InputError(f"{file}: no scalar history in the W&B run")
    columns = {k: (np.asarray(s, dtype=np.int64), np.asarray(v)) for k, (s, v) in cols.items()}
    return build_run(file, "wandb", columns, warnings)
