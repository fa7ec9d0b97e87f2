"""The checker's forked workers (toolkit/static/forked.py): every queued item is taken exactly
once, answers and failures reach the parent, and a worker that dies is an error, not a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from toolkit.static import check, forked

ROOT = Path(__file__).resolve().parents[2]


def _run(n: int, items: list[int], target) -> list:
    started = forked.spawn(n, target)
    assert started is not None
    workers, qw = started
    try:
        forked.feed(qw, items)
        return [forked.recv(w.from_child) for w in workers]
    finally:
        forked.kill(workers)
        forked.reap(workers)


def _taker(me: int, down: int, up: int, queue: forked.Queue) -> None:
    got = []
    while (k := queue.take()) is not None:
        got.append(k)
    forked.send(up, (me, got))


@pytest.mark.parametrize("count", [0, 1, 253, 40_000])
def test_every_item_is_taken_exactly_once(count: int) -> None:
    # 40,000 items are 160 kB: more than a pipe holds, so feeding blocks while workers take
    items = list(range(count))
    answers = _run(3, items, _taker)
    taken = sorted(k for _me, got in answers for k in got)
    assert taken == items
    assert sorted(me for me, _got in answers) == [0, 1, 2]


def test_large_answers_arrive_whole() -> None:
    blob = os.urandom(3 * 1024 * 1024)

    def target(me: int, down: int, up: int, queue: forked.Queue) -> None:
        forked.send_bytes(up, blob)

    started = forked.spawn(2, target)
    assert started is not None
    workers, qw = started
    try:
        forked.feed(qw, [])
        assert [forked.recv_bytes(w.from_child) for w in workers] == [blob, blob]
    finally:
        forked.reap(workers)


def test_a_worker_that_dies_without_answering_is_an_error() -> None:
    def target(me: int, down: int, up: int, queue: forked.Queue) -> None:
        os._exit(3)

    with pytest.raises(forked.WorkerDied):
        _run(2, [1, 2, 3], target)


def test_a_worker_exception_reaches_the_caller(monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise ValueError("rule crashed in a worker")

    monkeypatch.setattr(check, "_phase2", boom)  # forked workers inherit the patch
    with pytest.raises(ValueError, match="rule crashed in a worker"):
        check.check_paths([ROOT / "bench/static_corpus"], jobs=2)
