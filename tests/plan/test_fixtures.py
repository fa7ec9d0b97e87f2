"""Every fixture plan: the good ones lint clean, each bad one triggers exactly its own gate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit.plan import RULES, lint_file

FIXTURES = Path(__file__).with_name("fixtures")
GOOD = sorted(FIXTURES.glob("good_*.md"))
BAD = sorted(FIXTURES.glob("bad_*.md"))


def test_every_rule_has_a_bad_fixture() -> None:
    covered = {re.match(r"bad_(PL\d{3})_", p.name).group(1) for p in BAD}
    assert covered == {rule.code for rule in RULES}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_plans_are_clean(path: Path) -> None:
    assert lint_file(path) == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_plan_triggers_exactly_its_gate(path: Path) -> None:
    code = re.match(r"bad_(PL\d{3})_", path.name).group(1)
    findings = lint_file(path)
    assert findings, f"{path.name}: no findings"
    assert {f.code for f in findings} == {code}, findings
    for f in findings:
        assert 1 <= f.line <= len(path.read_text().splitlines())
        assert f.message and f.severity in ("error", "warning")
