from __future__ import annotations

from pathlib import Path

import pytest

from tests.loops.conftest import PY, make_repo, protocol_text
from toolkit.loops.__main__ import main
from toolkit.loops.globs import matches
from toolkit.loops.protocol import ProtocolError, parse_protocol


def test_globs() -> None:
    assert matches("model.py", ["model.py"])
    assert not matches("sub/model.py", ["model.py"])
    assert matches("src/a/b.py", ["src/**"])
    assert matches("b.py", ["**/*.py"]) and matches("a/b/c.py", ["**/*.py"])
    assert not matches("extra/x/y.py", ["extra/*.py"])


def test_parse_ok(repo, tmp_path: Path) -> None:
    p = parse_protocol(Path(repo.working_tree_dir) / "autoresearch-protocol.md")
    assert p.name == "t1" and p.metric.direction == "minimize" and p.branch == "autoresearch/t1"
    assert p.metric.better(1.0, 2.0) and not p.metric.better(2.0, 1.0)


def test_parse_names_every_bad_field(tmp_path: Path) -> None:
    f = tmp_path / "p.md"
    f.write_text(
        "---\nname: 'bad name'\nmetric: {name: m, direction: up, regex: 'x', json_key: y}\n"
        "fixed_files: [a.py]\nvariable_files: [a.py]\neval_command: ''\ntime_limit_s: -1\n"
        "max_rounds: 0\nbogus: 1\n---\n"
    )
    with pytest.raises(ProtocolError) as exc:
        parse_protocol(f)
    text = str(exc.value)
    for needle in ("'name'", "'metric.direction'", "exactly one of", "'eval_command'", "'time_limit_s'",
                   "'max_rounds'", "'bogus'", "'question'", "is in both"):  # fmt: skip
        assert needle in text, needle


def test_no_front_matter(tmp_path: Path) -> None:
    f = tmp_path / "p.md"
    f.write_text("# just markdown\n")
    with pytest.raises(ProtocolError, match="front matter"):
        parse_protocol(f)


def test_validate_against_repo(tmp_path: Path, capsys) -> None:
    text = protocol_text(
        variable='["model.py", "nothing/*.py"]',
        fixed='["data.txt", "*.py"]',
        eval=f"{PY} missing_eval.py",
    )
    root = tmp_path / "r"
    make_repo(root, protocol=text)
    code = main(
        ["autoresearch", "validate", str(root / "autoresearch-protocol.md"), "--repo", str(root)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "'variable_files[1]'" in out and "matches no file" in out
    assert "overlap" in out and "model.py" in out
    assert "missing_eval.py does not exist" in out


def test_validate_eval_script_must_be_fixed(tmp_path: Path, capsys) -> None:
    root = tmp_path / "r"
    make_repo(root, protocol=protocol_text(fixed='["data.txt"]'))
    assert (
        main(
            [
                "autoresearch",
                "validate",
                str(root / "autoresearch-protocol.md"),
                "--repo",
                str(root),
            ]
        )
        == 1
    )
    assert "eval script eval.py must be Fixed" in capsys.readouterr().out


def test_validate_ok(repo, capsys) -> None:
    root = Path(repo.working_tree_dir)
    assert (
        main(
            [
                "autoresearch",
                "validate",
                str(root / "autoresearch-protocol.md"),
                "--repo",
                str(root),
            ]
        )
        == 0
    )
    assert "valid" in capsys.readouterr().out
