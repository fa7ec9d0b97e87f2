"""Vectorised, exact parsing of JSON numbers that sit at known byte ranges of a buffer.

``parse_numbers(buf, start, end)`` reads ``buf[start[i]:end[i]]`` for every ``i`` at once with
numpy: ~160-200 ns of CPU per value on a 2-vCPU VM, where ``float()``, ``np.loadtxt`` and
``astype(float)`` of byte strings take ~250-300 ns. It is exact:

* Grammar is JSON's (``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?``), checked per value;
  a value that is not a JSON number (``NaN``, ``01``, ``1.``, ``+1``, stray bytes) is reported in
  ``bad`` and left to the caller (``json.loads`` of its line). Accepted values are the ones
  ``json.loads`` accepts, with the same float.
* Digits are read 8 at a time (SWAR over little-endian 64-bit words gathered from ``buf``) into
  an integer significand ``m`` (< 10^19) and a power of ten ``p``, so the value is ``m * 10**p``.
* Conversion is correctly rounded: when ``m <= 2**53`` and ``|p| <= 22`` one float64 multiply
  or divide of exact operands is (Clinger's fast path). Otherwise, with x87 ``longdouble``
  (64-bit significand), ``m`` and ``10**|p|`` (``|p| <= 27``) are exact and one rounding gives a
  result within half an ulp of the truth; rounding that to float64 is correct unless the 11
  dropped bits are within one of halfway. Those values, and every value outside both paths, are
  converted with Python's ``float`` (correctly rounded).

``buf`` must have at least 24 readable bytes before the first start and after the last end
(the caller pads), because words are gathered on both sides of each value.
"""

from __future__ import annotations

import numpy as np

PAD = 24  # bytes of padding the caller leaves before and after the values

_U = np.uint64
_ZEROS = _U(0x3030303030303030)
# x87 80-bit extended (x86-64 Linux/macOS-Intel): 64-bit significand in the first 8 of 16 bytes.
# Elsewhere (aarch64 quad, double-as-longdouble) values off the float64 fast path use float().
_LONG_OK = (
    np.finfo(np.longdouble).nmant == 63
    and np.dtype(np.longdouble).itemsize == 16
    and int(np.array([1.5], dtype=np.longdouble).view(np.uint64)[0]) == 0xC000000000000000
)
# keep the top n bytes of a little-endian word (the last n characters before an end position)
_HIGH = np.array([0] + [((1 << (8 * n)) - 1) << (8 * (8 - n)) for n in range(1, 9)], dtype=_U)
_FILL = _ZEROS & ~_HIGH  # '0' in the bytes that are not kept
# keep the low n bytes (the first n characters from a start position)
_LOW = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=_U)
_POW10_U = np.array([10**i for i in range(20)], dtype=_U)
_POW10_F = np.array([10.0**i for i in range(23)])
_POW10_L = np.array([10**i for i in range(28)], dtype=np.longdouble) if _LONG_OK else None
_BYTE_INDEX = _U(0x0001020304050607)  # (w * this) >> 56 == index of w's one set byte


def _digits8(w: np.ndarray) -> np.ndarray:
    """Eight ASCII digits (first character in the lowest byte) -> their value, 0..99999999."""
    v = w - _ZEROS
    v = (v * _U(10) + (v >> _U(8))) & _U(0x00FF00FF00FF00FF)
    v = (v * _U(100) + (v >> _U(16))) & _U(0x0000FFFF0000FFFF)
    return (v * _U(10000) + (v >> _U(32))) & _U(0xFFFFFFFF)


def _field(win: np.ndarray, end: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of the digit strings ending (exclusive) at ``end`` with ``length`` (<= 24) characters.

    Characters before each field are masked to ``'0'``; only as many words as the longest
    field needs are read. Returns ``(value, too_big)``: ``too_big`` marks fields of 10**19 or
    more (their value is not usable; it would overflow uint64).
    """
    total = np.zeros(end.shape, dtype=_U)
    too_big = np.zeros(end.shape, dtype=bool)
    longest = int(length.max(initial=0))
    for j in range((longest + 7) // 8):
        n = np.minimum(np.maximum(length - 8 * j, 0), 8)
        w = win[end - 8 * (j + 1)]
        part = _digits8((w & _HIGH[n]) | _FILL[n])
        if j == 2:
            too_big = part >= _U(1000)  # 1000 * 10**16 + (10**16 - 1) < 2**64
            part = np.minimum(part, _U(999))
        total += part * _POW10_U[8 * j] if j else part
    return total, too_big


_H = _U(0x8080808080808080)
_L7 = _U(0x7F7F7F7F7F7F7F7F)


def _zero_bytes(x: np.ndarray) -> np.ndarray:
    """High bit set in exactly the bytes of ``x`` that are zero."""
    return ~(((x & _L7) + _L7) | x) & _H


def _count(m0: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Number of high bits set in three byte masks."""
    return ((m0 >> _U(7)) + (m1 >> _U(7)) + (m2 >> _U(7))) * _U(0x0101010101010101) >> _U(56)


def _position(m0: np.ndarray, m1: np.ndarray, m2: np.ndarray, default: np.ndarray) -> np.ndarray:
    """Index (0..23) of the one high bit set in three byte masks; ``default`` where none is."""
    pos = default.astype(_U)
    for j, m in ((2, m2), (1, m1), (0, m0)):
        pos = np.where(m != 0, _U(8 * j) + (((m >> _U(7)) * _BYTE_INDEX) >> _U(56)), pos)
    return pos.astype(np.int64)


def parse_numbers(
    buf: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Parse JSON numbers at ``buf[start:end]`` (uint8 buffer, int64 positions).

    Returns ``(values, bad)``: float64 values and a boolean mask of ranges that are not JSON
    numbers this parser takes (their value is NaN; parse their lines another way). Integers and
    floats come out as ``float(json.loads(text))`` would.
    """
    n = start.size
    values = np.full(n, np.nan)
    if n == 0:
        return values, np.zeros(0, dtype=bool)
    win = np.ndarray(shape=(buf.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
    length = end - start
    ok = (length >= 1) & (length <= 24)
    length = np.clip(length, 0, 24)
    # the value's first 24 bytes as three words, bytes past its end zeroed
    w = [win[start + 8 * j] & _LOW[np.clip(length - 8 * j, 0, 8)] for j in range(3)]
    nondigit = [((y & _L7) + _U(0x7676767676767676) | y) & _H for y in (x ^ _ZEROS for x in w)]
    dots = [_zero_bytes(x ^ _U(0x2E2E2E2E2E2E2E2E)) for x in w]
    exps = [_zero_bytes((x | _U(0x2020202020202020)) ^ _U(0x6565656565656565)) for x in w]
    n_other = _count(*nondigit).astype(np.int64) - (24 - length)  # pad bytes are non-digits
    n_dot, n_exp = _count(*dots), _count(*exps)
    has_dot, has_exp = n_dot == 1, n_exp == 1
    neg = (w[0] & _U(0xFF)) == 45
    p_dot = _position(*dots, length)
    p_exp = _position(*exps, length)
    after_exp = (win[start + np.minimum(p_exp + 1, length)] & _U(0xFF)).astype(np.uint8)
    exp_sign = has_exp & ((after_exp == 45) | (after_exp == 43))
    exp_neg = exp_sign & (after_exp == 45)
    int_start = neg.astype(np.int64)
    int_end = np.minimum(p_dot, p_exp)
    frac_len = np.where(has_dot, p_exp - p_dot - 1, 0)
    exp_len = np.where(has_exp, length - p_exp - 1 - exp_sign, 0)
    int_len = int_end - int_start
    lead = (win[start + int_start] & _U(0xFF)) == 48
    # every non-digit byte is accounted for: '-' first, one '.', one 'e', a sign after the 'e'
    ok &= (n_dot <= 1) & (n_exp <= 1)
    ok &= n_other == int_start + has_dot + has_exp + exp_sign
    ok &= int_len >= 1
    ok &= ~lead | (int_len == 1)  # no leading zeros
    ok &= ~has_dot | ((frac_len >= 1) & (p_dot < p_exp))
    ok &= ~has_exp | (exp_len >= 1)
    ok &= (int_len <= 16) & (exp_len <= 4)

    int_len, frac_len, exp_len = (np.where(ok, x, 0) for x in (int_len, frac_len, exp_len))
    int_part, _ = _field(win, start + int_end, int_len)  # <= 16 digits
    frac_part, frac_big = _field(win, start + p_exp, frac_len)
    exp_part = _field(win, start + length, exp_len)[0].astype(np.int64)  # <= 4 digits
    # significand m = int * 10**frac_len + frac must stay below 10**19
    python = ok & (((int_part != 0) & (int_len + frac_len > 19)) | frac_big)
    m = int_part * _POW10_U[np.minimum(frac_len, 19)] + frac_part
    p = np.where(exp_neg, -exp_part, exp_part) - frac_len
    todo = ok & ~python
    fast = todo & (m <= _U(1 << 53)) & (p >= -22) & (p <= 22)
    _scale(values, fast, m, p, np.float64, _POW10_F)
    rest = todo & ~fast
    if _LONG_OK:
        near = rest & (p >= -27) & (p <= 27)
        python |= rest & ~near
        if near.any():
            r = np.full(n, np.nan, dtype=np.longdouble)
            _scale(r, near, m, p, np.longdouble, _POW10_L)
            sel = np.flatnonzero(near)
            r = r[sel]
            values[sel] = r.astype(np.float64)
            # r is within half a longdouble ulp of the truth, so rounding it to float64 (its top
            # 53 of 64 significand bits) is right unless the 11 bits dropped are within one of
            # halfway (0x400): those go to float()
            low = r.view(_U)[::2] & _U(0x7FF)
            python[sel[(low - _U(0x3FF)) <= _U(2)]] = True
    else:
        python |= rest
    for i in np.flatnonzero(python).tolist():
        values[i] = abs(float(buf[start[i] : end[i]].tobytes()))
    is_int = ~has_dot & ~has_exp  # json gives an int there, and float(-0) is 0.0
    np.negative(values, out=values, where=neg & ~(is_int & (m == 0)))
    values[~ok] = np.nan
    return values, ~ok


def _scale(out: np.ndarray, rows: np.ndarray, m: np.ndarray, p: np.ndarray, dtype, table) -> None:
    """``out[rows] = m * 10**p`` in ``dtype``: one multiply or divide by an exact power of ten."""
    up = rows & (p >= 0)
    down = rows & (p < 0)
    if up.any():
        out[up] = m[up].astype(dtype) * table[p[up]]
    if down.any():
        out[down] = m[down].astype(dtype) / table[-p[down]]
