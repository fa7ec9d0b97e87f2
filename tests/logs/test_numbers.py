"""The vectorised JSON-number parser against ``json.loads``: same accept/reject, same floats."""

from __future__ import annotations

import json
import random
import struct

import numpy as np
import pytest

from toolkit.logs.readers import numbers
from toolkit.logs.readers.numbers import PAD, parse_numbers

EDGES = [
    b"0",
    b"-0",
    b"-0.0",
    b"0.0",
    b"1",
    b"-1",
    b"0.1",
    b"2.8791234567890123",
    b"0.00029999999999999997",
    b"3.0000000000000004e-05",
    b"1.5e-05",
    b"1E5",
    b"1e+5",
    b"9007199254740993",
    b"9007199254740992",
    b"1234567890123456",
    b"123456789012345678",
    b"2.2250738585072014e-308",
    b"5e-324",
    b"1.7976931348623157e308",
    b"1e400",
    b"1e-400",
    b"0.000000000000000000000001",
    b"17976931348623157",
    b"0.30000000000000004",
    # not JSON numbers: must be rejected, never parsed leniently
    b"01",
    b"00",
    b"1.",
    b".5",
    b"+1",
    b"1e",
    b"1e+",
    b"-",
    b"--1",
    b"1.2.3",
    b"1e5e5",
    b"1-2",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"nan",
    b"inf",
    b"0x10",
    b"1,2",
    b"",
    b"1 ",
]


def _reference(text: bytes) -> float | None:
    """``float(json.loads(text))`` for a JSON number, else None (NaN/Infinity are not numbers)."""
    if text in (b"NaN", b"Infinity", b"-Infinity") or text != text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _parse(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    parts, starts, ends, pos = [], [], [], 0
    for text in texts:
        pos += 2
        starts.append(PAD + pos)
        pos += len(text)
        ends.append(PAD + pos)
        parts.append(b", " + text)
    buf = np.frombuffer(b"x" * PAD + b"".join(parts) + b"x" * PAD, dtype=np.uint8)
    return parse_numbers(buf, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))


def _random_texts(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.35:  # any double, shortest repr (what json.dumps writes)
            value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
            texts.append(json.dumps(value).encode())
        elif kind < 0.6:
            texts.append(repr(rng.random() * 10 ** rng.randint(-30, 30)).encode())
        elif kind < 0.7:
            texts.append(
                str(rng.randint(-(10 ** rng.randint(0, 22)), 10 ** rng.randint(0, 22))).encode()
            )
        elif kind < 0.8:  # hand-formatted: fixed digits, exponents
            spec = f".{rng.randint(0, 20)}{rng.choice('efg')}"
            texts.append(format(rng.random() * 10 ** rng.randint(-8, 8), spec).encode())
        else:  # junk made of number characters
            texts.append(bytes(rng.choice(b"0123456789.-+eE") for _ in range(rng.randint(1, 26))))
    return texts


def _check(texts: list[bytes]) -> int:
    values, bad = _parse(texts)
    accepted = 0
    for text, value, rejected in zip(texts, values.tolist(), bad.tolist(), strict=True):
        expected = _reference(text)
        if expected is None:
            assert rejected, f"accepted non-JSON number {text!r} as {value!r}"
            continue
        if rejected:  # allowed (the line goes to json.loads), but only past the parser's limits
            assert len(text) > 24 or b"e" in text.lower() or len(text.lstrip(b"-")) > 16, text
            continue
        accepted += 1
        assert value == expected and np.signbit(value) == np.signbit(expected), (
            text,
            value,
            expected,
        )
    return accepted


def test_edge_cases_match_json():
    assert _check(EDGES) >= 20


@pytest.mark.parametrize("seed", [0, 1])
def test_random_numbers_match_json_exactly(seed):
    texts = _random_texts(60_000, seed)
    assert _check(texts) > 40_000


def test_without_longdouble_every_value_still_exact(monkeypatch):
    """Platforms without x87 long double send the hard values to float(); same results."""
    monkeypatch.setattr(numbers, "_LONG_OK", False)
    assert _check(_random_texts(5_000, 2) + EDGES) > 3_000


def test_near_halfway_values_are_exact():
    """Decimal strings right next to a halfway point between two doubles (double-rounding traps)."""
    rng = random.Random(3)
    texts = []
    for _ in range(3_000):
        x = rng.random() * 10 ** rng.randint(-5, 5)
        up = np.nextafter(x, np.inf)
        mid = (np.longdouble(x) + np.longdouble(up)) / 2  # exactly halfway, in 80-bit
        for delta in (-1, 0, 1):
            y = np.nextafter(mid, np.longdouble(np.inf) * delta) if delta else mid
            # 19 significant digits: the significand still fits the integer path
            texts.append(np.format_float_scientific(y, unique=False, precision=18).encode())
    assert _check(texts) == len(texts)
