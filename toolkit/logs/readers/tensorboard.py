"""TensorBoard event files, read record by record (every event kept, no reservoir sampling).

Scalars come as ``simple_value`` (TF1/``torch.utils.tensorboard``) or as one-element tensors
(TF2 ``tf.summary.scalar``). The ``tensorboard`` package is the optional extra ``tensorboard``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import Run, build_run


def event_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*tfevents*") if p.is_file())


def _loader():
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
        from tensorboard.util import tensor_util
    except ImportError:
        raise InputError(
            "reading TensorBoard event files needs the 'tensorboard' package: "
            "pip install 'labcoat[tensorboard]' (or pip install tensorboard)"
        ) from None
    return EventFileLoader, tensor_util


def read_tensorboard(path: Path) -> Run:
    EventFileLoader, tensor_util = _loader()
    files = event_files(path)
    if not files:
        raise InputError(f"{path}: no TensorBoard event files (events.out.tfevents.*) found")
    root = path if path.is_dir() else path.parent
    cols: dict[str, tuple[list[int], list[float]]] = {}
    warnings: list[str] = []
    for file in files:
        rel = file.parent.relative_to(root).as_posix() if file.is_relative_to(root) else ""
        prefix = "" if rel in ("", ".") else rel + "/"
        if file.stat().st_size == 0:
            warnings.append(f"{file}: empty event file; skipped")
            continue
        try:
            for event in EventFileLoader(str(file)).Load():
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    kind = value.WhichOneof("value")
                    if kind == "simple_value":
                        number = float(value.simple_value)
                    elif kind == "tensor":
                        try:
                            arr = tensor_util.make_ndarray(value.tensor)
                        except (ValueError, TypeError):
                            continue
                        if arr.size != 1 or arr.dtype.kind not in "fiub":
                            continue
                        number = float(arr.reshape(()))
                    else:
                        continue
                    col = cols.setdefault(prefix + value.tag, ([], []))
                    col[0].append(int(event.step))
                    col[1].append(number)
        except (OSError, ValueError, RuntimeError) as exc:  # corrupt record: keep what came before
            warnings.append(f"{file}: stopped at a corrupt record ({type(exc).__name__}: {exc})")
    if not cols:
        raise InputError(f"{path}: no scalar summaries in {len(files)} event file(s)")
    columns = {k: (np.asarray(s, dtype=np.int64), np.asarray(v)) for k, (s, v) in cols.items()}
    return build_run(path, "tensorboard", columns, warnings)
