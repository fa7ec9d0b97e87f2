"""Every rule has a positive fixture (``# expect: CODE`` on each line it must flag) and a
negative fixture (``CODE_ok.py``: the correct version, which must not be flagged)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit.static.catalogue import SEVERITIES, all_rules
from toolkit.static.engine import analyze_source

FIXTURES = Path(__file__).parent / "fixtures"
EXPECT_RE = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")
RULES = all_rules()
CODES = [r.code for r in RULES]


def expected(text: str, code: str) -> set[int]:
    out = set()
    for i, line in enumerate(text.splitlines(), 1):
        m = EXPECT_RE.search(line)
        if m and code in {c.strip() for c in m.group(1).split(",")}:
            out.add(i)
    return out


@pytest.mark.parametrize("code", CODES)
def test_positive_fixture(code: str) -> None:
    path = FIXTURES / f"{code}.py"
    assert path.is_file(), f"missing positive fixture {path.name}"
    for p in [path, *sorted(FIXTURES.glob(f"{code}_pos*.py"))]:
        check_positive(p, code)


def check_positive(path: Path, code: str) -> None:
    text = path.read_text()
    want = expected(text, code)
    assert want, f"{path.name} has no '# expect: {code}' line"
    findings, err = analyze_source(text, str(path), select=[code])
    assert err is None
    got = {f.line for f in findings if f.code == code}
    assert got == want, f"{code}: flagged lines {sorted(got)}, expected {sorted(want)}"
    for f in findings:
        assert f.message and f.fix


@pytest.mark.parametrize("code", CODES)
def test_negative_fixture(code: str) -> None:
    path = FIXTURES / f"{code}_ok.py"
    assert path.is_file(), f"missing negative fixture {path.name}"
    for p in [path, *sorted(FIXTURES.glob(f"{code}_ok_*.py"))]:
        findings, err = analyze_source(p.read_text(), str(p), select=[code])
        assert err is None
        assert [f for f in findings if f.code == code] == [], p.name


def test_catalogue_metadata() -> None:
    assert len(RULES) >= 40
    names = set()
    for r in RULES:
        assert re.fullmatch(r"LC\d\d\d", r.code)
        assert r.severity in SEVERITIES
        assert r.frameworks and r.doc and r.fix
        assert len(r.doc) > 80, f"{r.code} doc too short"
        assert r.name not in names
        names.add(r.name)


def test_every_area_has_rules() -> None:
    areas = {r.code[:3] for r in RULES}
    assert areas >= {f"LC{i}" for i in range(0, 10)}
