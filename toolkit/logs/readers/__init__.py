"""Log readers and format auto-detection: :func:`read_log` is the one entry point."""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.errors import InputError
from toolkit.logs.readers.hf import read_hf_state
from toolkit.logs.readers.jsonl import read_jsonl
from toolkit.logs.readers.mlflow import is_mlflow_store, read_mlflow
from toolkit.logs.readers.tabular import read_csv
from toolkit.logs.readers.tensorboard import event_files, read_tensorboard
from toolkit.logs.readers.text import read_text
from toolkit.logs.readers.wandb import read_wandb, wandb_file
from toolkit.logs.series import Run

FORMATS = ("hf", "lightning", "jsonl", "csv", "tensorboard", "mlflow", "wandb", "text")


def detect_format(path: Path) -> str:
    """Pick a reader from the name, then the first bytes of the file."""
    if path.is_dir():
        for name, fmt in (("trainer_state.json", "hf"), ("metrics.csv", "lightning")):
            if (path / name).is_file():
                return fmt
        if is_mlflow_store(path):
            return "mlflow"
        if wandb_file(path) is not None:
            return "wandb"
        if event_files(path):
            return "tensorboard"
        raise InputError(
            f"{path}: directory holds no trainer_state.json, metrics.csv, MLflow store (mlruns/), "
            "W&B run (run-*.wandb) or TensorBoard event files"
        )
    name = path.name.lower()
    if name.endswith(".wandb"):
        return "wandb"
    if "tfevents" in name:
        return "tensorboard"
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head.strip():
        raise InputError(f"{path}: empty file; nothing to analyze")
    stripped = head.lstrip()
    if name == "trainer_state.json" or (stripped.startswith(b"{") and b'"log_history"' in head):
        return "hf"
    if stripped.startswith(b"{"):
        first = stripped.split(b"\n", 1)[0]
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            pass
        if name.endswith((".jsonl", ".ndjson")) or b"\n{" in stripped:
            return "jsonl"
        return "hf"  # one multi-line JSON document
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name == "metrics.csv":
        return "lightning"
    first_line = stripped.split(b"\n", 1)[0].decode("utf-8", "replace")
    if name.endswith(".csv") or (
        first_line.count(",") >= 1 and "=" not in first_line and ": " not in first_line
    ):
        lowered = first_line.lower()
        return "lightning" if "epoch" in lowered and "step" in lowered else "csv"
    return "text"


def read_log(path: str | Path, fmt: str | None = None) -> Run:
    """Read any supported training log into a :class:`Run` (format auto-detected)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    fmt = fmt or detect_format(path)
    if path.is_dir() and fmt in ("hf", "lightning"):
        path = path / ("trainer_state.json" if fmt == "hf" else "metrics.csv")
    if fmt == "hf":
        return read_hf_state(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt in ("csv", "lightning"):
        return read_csv(path, fmt)
    if fmt == "tensorboard":
        return read_tensorboard(path)
    if fmt == "mlflow":
        return read_mlflow(path)
    if fmt == "wandb":
        return read_wandb(path)
    if fmt == "text":
        return read_text(path)
    raise InputError(f"unknown log format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "detect_format", "read_log"]
