"""JSONL reader (one JSON object per line): a streaming, columnar fast path, exact by construction.

Most training logs repeat one line shape, ``{"step": 1, "loss": 2.3, "lr": 1e-4}``. The most
common all-numeric shape among the first lines is the *template*: its key tokens
(``{"step": ``, ``, "loss": `` ... ``}``) with one ``:`` each. The file is read in ~1 MiB
blocks (memory stays O(block + output), not O(file)), parsed on one thread per CPU (numpy
releases the GIL in its loops; file order is kept). In each block numpy finds the lines with
exactly the template's number of colons, checks that every template token sits at its place
around those colons (8-byte word compares), and parses the gaps between tokens as JSON numbers
with :func:`numbers.parse_numbers` (exact: same floats as ``json.loads``). A line that fails any
check -- other keys, an eval row, a string, ``NaN``, a half-written line -- is parsed by
``json.loads`` instead, so the fast path changes speed, never results. Where a C compiler was
present at install, ``_jsonl_c`` (same contract, ~5x faster per block) does the block work;
``LABCOAT_JSONL_NO_C=1`` in the environment forces the numpy path.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from toolkit.errors import InputError
from toolkit.logs.readers.numbers import PAD, parse_numbers
from toolkit.logs.series import Run, build_run, step_key

try:  # optional C accelerator (setup.py builds it where a C compiler exists); same results
    from toolkit.logs.readers import _jsonl_c as _accel
except ImportError:
    _accel = None
if os.environ.get("LABCOAT_JSONL_NO_C"):  # force the numpy path (debugging, benchmarks)
    _accel = None

BLOCK = 1 << 20  # bytes read per step of the streaming fast path
_KEY_RE = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*')
_VALUE_RE = re.compile(rb"[^,\s}]+")
_TEMPLATE_SAMPLE = 200
_U = np.uint64
_LOW = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=_U)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: strings loggers write for non-finite floats (strict-JSON writers cannot emit NaN/Infinity)
NONFINITE = {
    "nan": np.nan, "+nan": np.nan, "-nan": np.nan, "inf": np.inf, "+inf": np.inf,
    "-inf": -np.inf, "infinity": np.inf, "+infinity": np.inf, "-infinity": -np.inf,
}  # fmt: skip


def as_value(value: object) -> float | None:
    """A JSON value as a metric value: numbers, null (NaN) and the strings "nan"/"inf"/"Infinity"
    in any case (NaN / +-Inf); anything else is not a value (None)."""
    if _is_number(value):
        return float(value)  # type: ignore[arg-type]
    if value is None:
        return np.nan
    if isinstance(value, str):
        return NONFINITE.get(value.strip().lower())
    return None


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


class _Template:
    """Byte layout of the template line: tokens, their colon offsets and 8-byte words."""

    def __init__(self, keys: list[str], tokens: list[bytes]):
        self.keys = keys
        self.k = len(tokens) - 1
        self.tokens = tokens
        self.colon = [t.index(b":") if b":" in t else -1 for t in tokens]
        self.usable = all(t.count(b":") == 1 for t in tokens[:-1]) and b":" not in tokens[-1]
        self.words = [
            [
                (int.from_bytes(t[j : j + 8].ljust(8, b"\0"), "little"), min(8, len(t) - j))
                for j in range(0, len(t), 8)
            ]
            for t in tokens
        ]

    def tokens_match(self, win: np.ndarray, pos: np.ndarray, i: int) -> np.ndarray:
        """Whether token ``i`` occupies ``buf[pos:pos + len]`` for each position."""
        ok = np.ones(pos.shape, dtype=bool)
        for j, (word, size) in enumerate(self.words[i]):
            ok &= (win[pos + 8 * j] & _LOW[size]) == _U(word)
        return ok


def _parse_block(
    text: bytes, tpl: _Template
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, bytes]], int]:
    """Template lines of ``text`` (whole lines, each ending in ``\\n``) parsed in bulk.

    Returns the local indices of the template lines, their values ``(k, lines)``, the other
    lines as ``(local index, raw bytes)``, and the number of lines. Uses the C accelerator when
    it is built, else numpy. Both give ``json.loads``'s values; each hands the lines it cannot
    decide (the C path: numbers past its exact range) to ``json.loads`` as other lines.
    """
    if _accel is not None:
        fast_b, values_b, spans, n = _accel.parse_block(text, tuple(tpl.tokens))
        fast = np.frombuffer(fast_b, dtype=np.int64)
        values = np.frombuffer(values_b, dtype=np.float64).reshape(tpl.k, -1)
        return fast, values, [(i, text[a:b]) for i, a, b in spans], n
    buf = np.frombuffer(b"\0" * PAD + text + b"\0" * PAD, dtype=np.uint8)
    core = buf[PAD : PAD + len(text)]
    win = np.ndarray(shape=(buf.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
    ends = np.flatnonzero(core == 10) + PAD  # each line's newline
    n_lines = ends.size
    starts = np.empty(n_lines, dtype=np.int64)
    starts[0] = PAD
    starts[1:] = ends[:-1] + 1
    colons = np.flatnonzero(core == 58) + PAD
    upto = np.searchsorted(colons, ends)
    first = np.empty(n_lines, dtype=np.int64)
    first[0] = 0
    first[1:] = upto[:-1]
    k = tpl.k
    cand = np.flatnonzero(upto - first == k)
    good = np.zeros(n_lines, dtype=bool)
    values = np.zeros((k, 0))
    if cand.size:
        c = colons[first[cand][:, None] + np.arange(k)]  # (lines, k) colon positions
        line_start, eol = starts[cand], ends[cand]
        eol = eol - (buf[eol - 1] == 13)  # a '\r' before the newline
        tok_start = c - np.array(tpl.colon[:k])
        ok = tok_start[:, 0] == line_start
        last = eol - len(tpl.tokens[k])
        for i in range(k):
            ok &= tpl.tokens_match(win, tok_start[:, i], i)
        ok &= tpl.tokens_match(win, last, k)
        val_start = tok_start + np.array([len(t) for t in tpl.tokens[:k]])
        val_end = np.empty_like(val_start)
        val_end[:, :-1] = tok_start[:, 1:]
        val_end[:, -1] = last
        # one column at a time: arrays stay cache-sized, and a column of integers (step)
        # skips the fraction and exponent work
        vals = np.empty((k, cand.size))  # one row per key: columns stay contiguous
        for i in range(k):
            vals[i], bad = parse_numbers(
                buf, np.ascontiguousarray(val_start[:, i]), np.ascontiguousarray(val_end[:, i])
            )
            ok &= ~bad
        good[cand[ok]] = True
        values = vals[:, ok]
    fast = np.flatnonzero(good)
    slow = [
        (i, text[a - PAD : b - PAD])
        for i, a, b in zip(
            np.flatnonzero(~good).tolist(),
            starts[~good].tolist(),
            ends[~good].tolist(),
            strict=True,
        )
    ]
    return fast, values, slow, n_lines


def _workers() -> int:
    """Threads for block parsing: the CPUs this process may use (numpy releases the GIL)."""
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not Linux
        return max(1, min(8, os.cpu_count() or 1))


def _blocks(path: Path):
    """The file as whole-line blocks of about ``BLOCK`` bytes, then the unterminated tail."""
    carry = b""
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            text = carry + block if carry else block
            cut = text.rfind(b"\n") + 1
            carry = text[cut:]
            if cut:
                yield text[:cut], False
    if carry:
        yield carry, True


def _read_fast(path: Path, tpl: _Template):
    """Stream the file in blocks, parsed on a few threads; results kept in file order.

    Returns fast line indices, their values ``(k, lines)``, the other lines, the line count and
    whether what was read ended with a newline (a log still being written may end mid-line).
    """
    fast_parts, value_parts, slow = [], [], []
    n_lines = 0

    def collect(result: tuple) -> None:
        nonlocal n_lines
        fast, values, other, n = result
        fast_parts.append(fast + n_lines)
        value_parts.append(values)
        slow.extend((i + n_lines, raw) for i, raw in other)
        n_lines += n

    workers = _workers()
    tail = False
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for text, is_tail in _blocks(path):
            if is_tail:  # last line without a newline: maybe half-written, json.loads decides
                tail = True
                while pending:
                    collect(pending.popleft().result())
                slow.append((n_lines, text))
                n_lines += 1
                break
            pending.append(pool.submit(_parse_block, text, tpl))
            while len(pending) > 2 * workers:  # bounded memory: at most 2 blocks per thread
                collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    fast = np.concatenate(fast_parts) if fast_parts else np.zeros(0, dtype=np.int64)
    values = np.concatenate(value_parts, axis=1) if value_parts else np.zeros((tpl.k, 0))
    return fast, values, slow, n_lines, not tail


def read_jsonl(path: Path) -> Run:
    with path.open("rb") as fh:
        head = fh.read(BLOCK)
    if not head.strip():
        raise InputError(f"{path}: empty file; expected one JSON object per line")
    sample = [ln for ln in head.split(b"\n")[:_TEMPLATE_SAMPLE] if ln.strip()]
    found = _template(sample)
    tpl = _Template(*found) if found is not None else None
    if tpl is not None and tpl.usable:
        keys = tpl.keys
        fast_idx, matrix, slow_lines, n_lines, ends_with_newline = _read_fast(path, tpl)
    else:
        keys, fast_idx, matrix = [], np.zeros(0, dtype=np.int64), np.zeros((0, 0))
        data = path.read_bytes()
        ends_with_newline = data.endswith(b"\n")  # of what was read: the file may still grow
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        n_lines = len(lines)
        slow_lines = list(enumerate(lines))

    warnings: list[str] = []
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
            if i == n_lines - 1 and not ends_with_newline
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
        step[fast_idx] = matrix[keys.index(step_name)]
    slow_cols: dict[str, tuple[list[int], list[float]]] = {}
    for i, obj in slow_rows:
        data_line[i] = True
        for key, value in obj.items():
            if key == step_name:
                if _is_number(value):
                    step[i] = value
                continue
            number = as_value(value)
            if number is not None:
                col = slow_cols.setdefault(key, ([], []))
                col[0].append(i)
                col[1].append(number)
    if step_name is None:
        step[data_line] = np.arange(int(data_line.sum()))  # no step field: row number
    elif np.isnan(step[data_line]).any():  # a row without a step belongs to the step before it
        filled = np.where(np.isnan(step), -1, np.arange(n_lines))
        np.maximum.accumulate(filled, out=filled)
        missing = filled < 0
        step = np.where(missing, 0, step[np.maximum(filled, 0)])
    fast_steps = step[fast_idx].astype(np.int64)  # shared by every template-only column
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        if name == step_name:
            continue
        if name in keys and name not in slow_cols:
            columns[name] = (fast_steps, matrix[keys.index(name)])
            continue
        parts_idx, parts_val = [], []
        if name in keys:
            parts_idx.append(fast_idx)
            parts_val.append(matrix[keys.index(name)])
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
