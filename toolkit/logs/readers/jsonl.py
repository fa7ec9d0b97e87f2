"""JSONL reader (one JSON object per line) with a columnar fast path.

Fast path: most training logs repeat one line shape, ``{"step": 1, "loss": 2.3, "lr": 1e-4}``.
The most common all-numeric shape among the first lines is the *template*. Its key tokens
(``{"step": ``, ``, "loss": `` ...) are replaced in the whole file by control bytes with
``bytes.replace``; numpy then finds, per line, whether exactly the template's tokens appear in
order with only number characters between them. Those lines are parsed as one CSV block by
``np.loadtxt``. Every other line (eval rows, other shapes, strings, ``null``, half-written
lines) goes through ``json.loads``. Any surprise in the fast path falls back to ``json.loads``
for the whole file, so the fast path changes speed, never results.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.series import Run, build_run, step_key

# control bytes that never appear in JSON text outside strings (no \t \n \v \f \r)
_CODES = [c for c in range(1, 32) if c not in (9, 10, 11, 12, 13)]
_NUMBER_CHARS = b"0123456789.-+eENaInfinity"
_NUMBER_BYTES = _NUMBER_CHARS + b" \t\r"
_TO_CSV = bytes.maketrans(b":{}\r", b",   ")
_KEY_RE = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*')
_VALUE_RE = re.compile(rb"[^,\s}]+")
_TEMPLATE_SAMPLE = 200


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _template(lines: list[bytes]) -> tuple[list[str], list[bytes]] | None:
    """Key names and raw key tokens of the most common all-numeric line shape."""
    shapes: Counter[tuple[str, ...]] = Counter()
    example: dict[tuple[str, ...], bytes] = {}
    for raw in lines:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict) or not obj or not all(_is_number(v) for v in obj.values()):
            continue
        shape = tuple(obj)
        shapes[shape] += 1
        example.setdefault(shape, raw.rstrip(b"\r\n"))
    if not shapes:
        return None
    shape = shapes.most_common(1)[0][0]
    if len(shape) + 1 > len(_CODES):
        return None
    raw = example[shape]
    tokens, pos, values = [], 0, []
    for _ in shape:
        match = _KEY_RE.search(raw, pos)
        if match is None:
            return None
        value = _VALUE_RE.match(raw, match.end())
        if value is None:
            return None
        tokens.append(raw[pos : match.end()])
        values.append(value.group())
        pos = value.end()
    tokens.append(raw[pos:])
    rebuilt = b"".join(t + v for t, v in zip(tokens, values + [b""], strict=True))
    if rebuilt != raw or not tokens[-1].strip().endswith(b"}"):
        return None
    return list(shape), tokens


def _fast_lines_translate(
    data: bytes, tokens: list[bytes]
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Fast path A: one ``translate`` pass finds the template lines, ``np.loadtxt`` parses them.

    A line is a template line when (1) deleting every number character from it leaves exactly
    the template's skeleton and (2) every exact key token occurs once per template line (counted
    over the file, minus its other lines) -- with (3) template keys that stay distinct once
    number characters are deleted, (2) rules out keys that differ from the template's only in
    number characters (``loss`` vs ``loss1``); templates failing (3) (``acc1``, ``acc5``) use B. Template lines become CSV by mapping
    ``:`` to ``,`` and braces to blanks; ``usecols`` parses only the value fields.
    """
    k = len(tokens) - 1
    if tokens[0].count(b":") != 1 or tokens[0].count(b",") or tokens[0].count(b'"') != 2:
        return None
    if any(t.count(b":") != 1 or t.count(b",") != 1 or t.count(b'"') != 2 for t in tokens[1:k]):
        return None
    if tokens[k].strip() != b"}":
        return None
    deleted = _NUMBER_CHARS + b"\r"
    reduced = [t.translate(None, deleted) for t in tokens[:k]]
    if len(set(reduced)) != k:  # keys equal up to number characters (acc1, acc5): use path B
        return None
    skeleton = b"".join(tokens).translate(None, deleted)
    sk = data.translate(None, deleted)
    n_lines = sk.count(b"\n") + (0 if sk.endswith(b"\n") else 1)
    unit = skeleton + b"\n"
    if sk == unit * n_lines or sk == unit * (n_lines - 1) + skeleton:
        regular = np.ones(n_lines, dtype=bool)
        irregular: list[bytes] = []
        starts = ends = None
    else:
        sk_lines = sk.split(b"\n")
        if sk.endswith(b"\n"):
            sk_lines.pop()
        regular = np.fromiter((ln == skeleton for ln in sk_lines), dtype=bool, count=n_lines)
        arr = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 10)
        ends = np.concatenate((newlines, [len(data)]))[:n_lines]
        starts = np.concatenate(([0], newlines + 1))[:n_lines]
        irregular = [
            data[a:b]
            for a, b in zip(starts[~regular].tolist(), ends[~regular].tolist(), strict=True)
        ]
    fast = np.flatnonzero(regular)
    if fast.size == 0:
        return None
    for token in tokens[:k]:
        if data.count(token) - sum(line.count(token) for line in irregular) != fast.size:
            return None
    if starts is None:
        block = data
    else:
        breaks = np.flatnonzero(np.diff(fast) != 1)
        run_first = np.concatenate(([fast[0]], fast[breaks + 1]))
        run_last = np.concatenate((fast[breaks], [fast[-1]]))
        block = b"\n".join(
            data[a:b]
            for a, b in zip(starts[run_first].tolist(), ends[run_last].tolist(), strict=True)
        )
    block = block.translate(_TO_CSV)
    try:
        values = np.loadtxt(
            io.BytesIO(block),
            delimiter=",",
            usecols=range(1, 2 * k, 2),
            comments=None,
            dtype=np.float64,
            ndmin=2,
        )
    except ValueError:
        return None
    if values.shape != (fast.size, k):
        return None
    return fast, values, n_lines


def _fast_lines(data: bytes, tokens: list[bytes]) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Fast path B (when A's preconditions fail): key tokens replaced by control bytes."""
    k = len(tokens) - 1
    codes = bytes(_CODES[: k + 1])
    if any(bytes([c]) in data for c in codes):
        return None
    buf = data
    for token, code in zip(tokens, codes, strict=True):
        buf = buf.replace(token, bytes([code]))
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    n_lines = newlines.size + (1 if arr.size and arr[-1] != 10 else 0)
    if n_lines == 0:
        return None
    ends = np.empty(n_lines, dtype=np.int64)  # exclusive end of each line (its newline)
    ends[: newlines.size] = newlines
    if n_lines > newlines.size:
        ends[-1] = arr.size
    starts = np.empty(n_lines, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1

    lut = np.zeros(256, dtype=np.int8)
    lut[list(codes)] = np.arange(1, k + 2, dtype=np.int8)
    code_of = lut[arr]
    pos = np.flatnonzero(code_of)
    code = code_of[pos]
    line = np.searchsorted(newlines, pos)
    count = np.bincount(line, minlength=n_lines)
    first = np.searchsorted(line, np.arange(n_lines))
    rank = np.arange(pos.size) - first[line]
    ok = code == rank + 1
    regular = count == k + 1
    regular &= np.bincount(line, weights=~ok, minlength=n_lines) == 0
    # first token at the line start, closing token at the end (a '\r' may follow)
    has = count > 0
    regular[has] &= pos[first[has]] == starts[has]
    last = first + count - 1
    tail = ends[has] - pos[last[has]] - 1
    regular[has] &= (tail == 0) | (
        (tail == 1) & (arr[np.minimum(ends[has] - 1, arr.size - 1)] == 13)
    )
    allowed = np.zeros(256, dtype=bool)
    allowed[list(_NUMBER_BYTES)] = True
    allowed[list(codes)] = True
    allowed[10] = True
    bad = np.flatnonzero(~allowed[arr])
    if bad.size:
        regular[np.unique(np.searchsorted(newlines, bad))] = False
    fast = np.flatnonzero(regular)
    if fast.size == 0:
        return None
    if fast.size == n_lines:
        block = buf
    else:  # join runs of consecutive regular lines
        breaks = np.flatnonzero(np.diff(fast) != 1)
        run_first = np.concatenate(([fast[0]], fast[breaks + 1]))
        run_last = np.concatenate((fast[breaks], [fast[-1]]))
        block = b"\n".join(
            buf[s:e]
            for s, e in zip(starts[run_first].tolist(), ends[run_last].tolist(), strict=True)
        )
    table = bytes.maketrans(codes[1:k], b"," * (k - 1))
    block = block.translate(table, bytes([codes[0], codes[k]]))
    try:
        values = np.loadtxt(io.BytesIO(block), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    if values.shape != (fast.size, k):
        return None
    return fast, values, n_lines


def read_jsonl(path: Path) -> Run:
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: empty file; expected one JSON object per line")
    head = data[: 1 << 20].split(b"\n")[:_TEMPLATE_SAMPLE]
    template = _template([ln for ln in head if ln.strip()])
    fast = None
    if template is not None:
        try:
            fast = _fast_lines_translate(data, template[1]) or _fast_lines(data, template[1])
        except (ValueError, IndexError):
            fast = None

    warnings: list[str] = []
    if fast is not None:
        keys = template[0]
        fast_idx, matrix, n_lines = fast
        is_fast = np.zeros(n_lines, dtype=bool)
        is_fast[fast_idx] = True
        slow_idx = np.flatnonzero(~is_fast)
        if slow_idx.size:
            arr = np.frombuffer(data, dtype=np.uint8)
            nl = np.flatnonzero(arr == 10)
            bounds = np.concatenate(([-1], nl, [len(data)]))
            slow_lines = [(i, data[bounds[i] + 1 : bounds[i + 1]]) for i in slow_idx.tolist()]
        else:
            slow_lines = []
    else:
        keys, fast_idx, matrix = [], np.zeros(0, dtype=np.int64), np.zeros((0, 0))
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        n_lines = len(lines)
        slow_lines = list(enumerate(lines))

    slow_rows: list[tuple[int, dict]] = []
    bad: list[int] = []
    for i, raw in slow_lines:
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            bad.append(i)
            continue
        if not isinstance(obj, dict):
            warnings.append(f"{path}:{i + 1}: a JSON {type(obj).__name__}, not an object; skipped")
            continue
        slow_rows.append((i, obj))
    for i in bad:
        what = (
            "truncated last line (half-written?)"
            if i == n_lines - 1 and not data.endswith(b"\n")
            else "not valid JSON"
        )
        warnings.append(f"{path}:{i + 1}: {what}; skipped")
    if fast_idx.size == 0 and not slow_rows:
        first = bad[0] + 1 if bad else 1
        raise InputError(
            f"{path}:{first}: no readable JSON object lines; expected one JSON object per line"
        )
    return _assemble(path, n_lines, keys, fast_idx, matrix, slow_rows, warnings)


def _assemble(
    path: Path,
    n_lines: int,
    keys: list[str],
    fast_idx: np.ndarray,
    matrix: np.ndarray,
    slow_rows: list[tuple[int, dict]],
    warnings: list[str],
) -> Run:
    names = list(keys)
    seen = set(names)
    for _, obj in slow_rows:
        for key in obj:
            if key not in seen:
                seen.add(key)
                names.append(key)
    step_name = step_key(names)

    data_line = np.zeros(n_lines, dtype=bool)
    data_line[fast_idx] = True
    step = np.full(n_lines, np.nan)
    if step_name is not None and step_name in keys:
        step[fast_idx] = matrix[:, keys.index(step_name)]
    slow_cols: dict[str, tuple[list[int], list[float]]] = {}
    for i, obj in slow_rows:
        data_line[i] = True
        for key, value in obj.items():
            if key == step_name:
                if _is_number(value):
                    step[i] = value
                continue
            if _is_number(value):
                col = slow_cols.setdefault(key, ([], []))
                col[0].append(i)
                col[1].append(float(value))
            elif value is None:
                col = slow_cols.setdefault(key, ([], []))
                col[0].append(i)
                col[1].append(np.nan)
    if step_name is None:
        step[data_line] = np.arange(int(data_line.sum()))  # no step field: row number
    else:  # a row without a step belongs to the step before it
        filled = np.where(np.isnan(step), -1, np.arange(n_lines))
        np.maximum.accumulate(filled, out=filled)
        missing = filled < 0
        step = np.where(missing, 0, step[np.maximum(filled, 0)])
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        if name == step_name:
            continue
        parts_idx, parts_val = [], []
        if name in keys:
            parts_idx.append(fast_idx)
            parts_val.append(matrix[:, keys.index(name)])
        if name in slow_cols:
            parts_idx.append(np.asarray(slow_cols[name][0], dtype=np.int64))
            parts_val.append(np.asarray(slow_cols[name][1], dtype=np.float64))
        if not parts_idx:
            continue
        idx = np.concatenate(parts_idx)
        val = np.concatenate(parts_val)
        if len(parts_idx) > 1:
            order = np.argsort(idx, kind="stable")
            idx, val = idx[order], val[order]
        columns[name] = (step[idx].astype(np.int64), val)
    return build_run(path, "jsonl", columns, warnings)
