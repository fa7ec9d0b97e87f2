"""Synthetic training logs for tests, the benchmark and demos.

:func:`healthy_run` is a realistic noisy run: linear warmup then cosine lr, a power-law loss
with multiplicative noise, log-normal grad norm, steady throughput, periodic eval.
Fault injectors modify its columns; writers emit every supported format.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

Columns = dict[str, tuple[np.ndarray, np.ndarray]]


def healthy_run(
    steps: int = 5000,
    seed: int = 0,
    peak_lr: float = 3e-4,
    warmup_frac: float = 0.05,
    eval_every: int = 200,
) -> Columns:
    rng = np.random.default_rng(seed)
    s = np.arange(steps, dtype=np.int64)
    warm = max(1, int(warmup_frac * steps))
    t = np.clip((s - warm) / max(1, steps - warm), 0, 1)
    lr = np.where(s < warm, peak_lr * (s + 1) / warm, peak_lr * 0.5 * (1 + np.cos(math.pi * t)))
    clean = 2.2 + 8.5 * (1 + s / 60.0) ** -0.6
    loss = clean * (1 + 0.02 * rng.standard_normal(steps))
    grad = (0.4 + 2.0 * (1 + s / 100.0) ** -0.5) * np.exp(0.15 * rng.standard_normal(steps))
    tput = 12000.0 * (1 + 0.02 * rng.standard_normal(steps))
    e = s[eval_every - 1 :: eval_every]
    val = clean[e] + 0.08 + 0.004 * rng.standard_normal(e.size)
    return {
        "loss": (s, loss),
        "learning_rate": (s, lr),
        "grad_norm": (s, grad),
        "tokens_per_sec": (s, tput),
        "eval_loss": (e, val),
    }


# ----------------------------------------------------------------------------- faults


def inject_spike(cols: Columns, step: int, factor: float = 3.0, grad_lead: int | None = 3) -> None:
    s, v = cols["loss"]
    v[s == step] *= factor
    if grad_lead is not None:
        gs, g = cols["grad_norm"]
        g[gs == step - grad_lead] *= 8.0


def inject_nan(cols: Columns, step: int, metric: str = "loss") -> None:
    s, v = cols[metric]
    v[s >= step] = np.nan


def inject_plateau(cols: Columns, start: int, end: int) -> None:
    """Loss stuck at its level at ``start`` from ``start`` to ``end``, then decaying again."""
    s, v = cols["loss"]
    rng = np.random.default_rng(1)
    level = float(np.median(v[(s >= start - 20) & (s < start)]))
    mask = (s >= start) & (s < end)
    v[mask] = level * (1 + 0.02 * rng.standard_normal(int(mask.sum())))
    after = s >= end
    v[after] = np.minimum(v[after], level)


def inject_overfit(cols: Columns, from_step: int, rise: float = 0.3) -> None:
    e, val = cols["eval_loss"]
    after = e >= from_step
    base = val[np.flatnonzero(~after)[-1]] if (~after).any() else val[0]
    val[after] = base * (1 + rise * (e[after] - from_step) / max(1, e[-1] - from_step) + 0.01)


def inject_divergence(cols: Columns, from_step: int, rate: float = 1.002) -> None:
    s, v = cols["loss"]
    after = s >= from_step
    v[after] = v[after] * rate ** (s[after] - from_step)


def inject_throughput_drop(cols: Columns, start: int, end: int, frac: float = 0.5) -> None:
    s, v = cols["tokens_per_sec"]
    v[(s >= start) & (s < end)] *= 1 - frac


# ----------------------------------------------------------------------------- writers


def _rows(cols: Columns) -> dict[int, dict[str, float]]:
    rows: dict[int, dict[str, float]] = {}
    for name, (steps, values) in cols.items():
        for st, val in zip(steps.tolist(), values.tolist(), strict=True):
            rows.setdefault(st, {})[name] = val
    return dict(sorted(rows.items()))


def _train_eval_rows(cols: Columns) -> list[dict]:
    """Training rows and separate eval rows, as trainers log them."""
    out = []
    train = {k: v for k, v in cols.items() if not k.startswith("eval_")}
    evals = {k: v for k, v in cols.items() if k.startswith("eval_")}
    ev_rows = _rows(evals)
    for st, row in _rows(train).items():
        out.append({"step": st, **row})
        if st in ev_rows:
            out.append({"step": st, **ev_rows[st]})
    return out


def write_jsonl(path: Path, cols: Columns) -> Path:
    with open(path, "w") as fh:
        for row in _train_eval_rows(cols):
            fh.write(json.dumps(row) + "\n")
    return path


def write_hf_state(path: Path, cols: Columns, every: int = 10) -> Path:
    history = []
    for row in _train_eval_rows(cols):
        if "eval_loss" in row or row["step"] % every == 0:
            history.append({"epoch": row["step"] / 1000, **row})
    state = {"global_step": history[-1]["step"], "log_history": history}
    path.write_text(json.dumps(state, indent=2))
    return path


def write_csv(path: Path, cols: Columns, lightning: bool = False) -> Path:
    names = list(cols)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        if lightning:  # sparse rows: train rows and val rows apart, empty cells elsewhere
            header = ["epoch", "step"] + [
                {"loss": "train_loss", "learning_rate": "lr-AdamW", "eval_loss": "val_loss"}.get(
                    n, n
                )
                for n in names
            ]
            writer.writerow(header)
            for row in _train_eval_rows(cols):
                writer.writerow(
                    [row["step"] // 1000, row["step"]] + [row.get(n, "") for n in names]
                )
        else:
            writer.writerow(["step"] + names)
            for st, row in _rows(cols).items():
                writer.writerow([st] + [row.get(n, "") for n in names])
    return path


def write_text(path: Path, cols: Columns) -> Path:
    with open(path, "w") as fh:
        fh.write("starting training\n")
        for row in _train_eval_rows(cols):
            pairs = " ".join(f"{k}={v:.6g}" for k, v in row.items() if k != "step")
            fh.write(f"[2026-01-01 00:00:00] INFO step={row['step']} {pairs}\n")
    return path


def write_tensorboard(logdir: Path, cols: Columns, tensor_form: bool = False) -> Path:
    """Event file with ``simple_value`` scalars, or TF2-style one-element tensors."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    names = {"loss": "train/loss", "learning_rate": "train/lr", "eval_loss": "eval/loss"}
    writer = EventFileWriter(str(logdir))
    for name, (steps, values) in cols.items():
        tag = names.get(name, name)
        for st, val in zip(steps.tolist(), values.tolist(), strict=True):
            if tensor_form:
                value = summary_pb2.Summary.Value(
                    tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(val))
                )
                value.metadata.plugin_data.plugin_name = "scalars"
            else:
                value = summary_pb2.Summary.Value(tag=tag, simple_value=val)
            writer.add_event(
                event_pb2.Event(step=st, wall_time=0.0, summary=summary_pb2.Summary(value=[value]))
            )
    writer.close()
    return logdir
