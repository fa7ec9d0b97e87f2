"""Worker processes give exactly what one process gives (the phase-2 balancing moves files
between processes; the program is built in file order either way)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.static.check import FILE_COST, MOVE_COST, RUN_COST, _balance, check_paths

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tree", ["bench/static_corpus", "bench/static_reported"])
def test_processes_give_what_one_process_gives(tree):
    paths = [ROOT / tree]
    one = check_paths(paths, jobs=1).as_dict()
    assert one["findings"], "the tree has findings to compare"
    for jobs in (2, 3):
        assert check_paths(paths, jobs=jobs).as_dict() == one


def _entries(specs):
    """(position, summary, kept) from (path, run code?, kept?, AST nodes) tuples."""
    return [
        (i, SimpleNamespace(path=p, is_run=run, size=size, grad_ctx=False), kept)
        for i, (p, run, kept, size) in enumerate(specs)
    ]


def test_balance_moves_run_code_to_the_idle_process():
    program = SimpleNamespace(run_closure=set())
    # process 0 holds two big run files, process 1 a small library file
    entries = _entries(
        [("a.py", True, True, 1000), ("b.py", True, True, 1000), ("c.py", False, True, 1000)]
    )
    moved = _balance(entries, {0: 0, 1: 0, 2: 1}, program, 2)
    assert moved == {0: 1}  # one run file moves; its re-parse costs less than it saves
    load0 = FILE_COST + 1000 * RUN_COST
    load1 = 2 * FILE_COST + 1000 + 1000 * (RUN_COST + MOVE_COST)
    assert max(load0, load1) < 2 * (FILE_COST + 1000 * RUN_COST)


def test_balance_leaves_even_or_unmovable_work_alone():
    program = SimpleNamespace(run_closure={"b.py"})  # b.py is run code through an import
    even = _entries([("a.py", True, True, 500), ("b.py", False, True, 500)])
    assert _balance(even, {0: 0, 1: 1}, program, 2) == {}
    # the heavy files were not kept in memory (parsed again anyway): nothing moves
    unkept = _entries(
        [("a.py", True, False, 900), ("b.py", False, False, 900), ("c.py", False, True, 10)]
    )
    assert _balance(unkept, {0: 0, 1: 0, 2: 1}, program, 2) == {}
