"""The check / rules commands: formats, exit codes, suppression, config, never crashing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.static import check as check_cmd
from toolkit.static.catalogue import all_rules
from toolkit.static.check import check_paths
from toolkit.static.config import load_config
from toolkit.static.engine import analyze_source
from toolkit.static.rules import __main__ as rules_cmd

BUGGY = """\
import torch
import torch.nn.functional as F
torch.manual_seed(0)
for x, y in loader:
    opt.zero_grad()
    probs = F.softmax(model(x), dim=-1)
    loss = F.cross_entropy(probs, y)
    loss.backward()
    opt.step()
"""
CLEAN = """\
import torch
torch.manual_seed(0)
x = torch.zeros(3)
"""


def run_check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = check_cmd.main(argv)
    return code, capsys.readouterr().out


def test_json_output_schema_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "train.py"
    f.write_text(BUGGY)
    code, out = run_check([str(f), "--format", "json", "--no-config"], capsys)
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"findings", "files_checked", "parse_errors"}
    assert data["files_checked"] == 1
    (finding,) = [x for x in data["findings"] if x["code"] == "LC301"]
    assert set(finding) == {"code", "name", "severity", "path", "line", "col", "message", "fix"}
    assert finding["severity"] == "error" and finding["line"] == 7 and "probs" in finding["message"]


def test_clean_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.py").write_text(CLEAN)
    code, out = run_check([str(tmp_path), "--no-config"], capsys)
    assert code == 0
    assert "1 file(s) checked" in out


def test_directory_recurses_and_parse_errors_do_not_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text("def f(:\n")
    (tmp_path / "pkg" / "train.py").write_text(BUGGY)
    (tmp_path / "pkg" / "latin.py").write_bytes(b"x = '\xff'\n")
    code, out = run_check([str(tmp_path), "--format", "json", "--no-config"], capsys)
    data = json.loads(out)
    assert code == 1
    assert data["files_checked"] == 3
    assert {Path(p["path"]).name for p in data["parse_errors"]} == {"bad.py", "latin.py"}
    assert any(x["code"] == "LC301" for x in data["findings"])


def test_select_and_ignore(tmp_path: Path) -> None:
    f = tmp_path / "t.py"
    f.write_text(BUGGY)
    only = check_paths([f], select=["LC3"])
    assert {x.code for x in only.findings} == {"LC301"}
    none = check_paths([f], ignore=["LC301", "LC9"])
    assert "LC301" not in {x.code for x in none.findings}


def test_unknown_code_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.py"
    f.write_text(CLEAN)
    with pytest.raises(SystemExit) as exc:
        from toolkit.cli import run

        run(check_cmd.main, "prog", [str(f), "--select", "XX999"])
    assert exc.value.code == 2
    assert "unknown rule code" in capsys.readouterr().err


def test_missing_path_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from toolkit.cli import run

    with pytest.raises(SystemExit) as exc:
        run(check_cmd.main, "prog", ["/nonexistent/x.py"])
    assert exc.value.code == 2


def test_noqa_suppresses() -> None:
    src = BUGGY.replace(
        "loss = F.cross_entropy(probs, y)", "loss = F.cross_entropy(probs, y)  # noqa: LC301"
    )
    assert "LC301" not in {f.code for f in analyze_source(src, select=["LC301"])[0]}
    src2 = BUGGY.replace(
        "loss = F.cross_entropy(probs, y)", "loss = F.cross_entropy(probs, y)  # noqa"
    )
    assert not analyze_source(src2, select=["LC301"])[0]
    src3 = BUGGY.replace(
        "loss = F.cross_entropy(probs, y)", "loss = F.cross_entropy(probs, y)  # noqa: LC999"
    )
    assert analyze_source(src3, select=["LC301"])[0]


def test_pyproject_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.labcoat.static]\nignore = ["LC9"]\n[tool.labcoat.static.per-file-ignores]\n"legacy/*.py" = ["LC3"]\n'
    )
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "a.py").write_text(BUGGY)
    (tmp_path / "b.py").write_text(BUGGY)
    cfg = load_config(tmp_path)
    assert cfg.ignore == ["LC9"]
    res = check_paths([tmp_path], config=cfg)
    by_file = {}
    for f in res.findings:
        by_file.setdefault(Path(f.path).name, set()).add(f.code)
    assert "LC301" in by_file["b.py"]
    assert "LC301" not in by_file.get("a.py", set())
    assert not any(c.startswith("LC9") for codes in by_file.values() for c in codes)


def test_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.py"
    f.write_text(BUGGY)
    code, out = run_check([str(f), "--format", "sarif", "--no-config"], capsys)
    data = json.loads(out)
    assert data["version"] == "2.1.0"
    run = data["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(rules) == len(all_rules())
    res = [r for r in run["results"] if r["ruleId"] == "LC301"]
    assert res and res[0]["level"] == "error"
    assert rules[res[0]["ruleIndex"]]["id"] == "LC301"
    assert res[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 7


def test_rules_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert rules_cmd.main(["--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] >= 40
    assert {"code", "name", "severity", "frameworks", "doc", "fix"} <= set(data["rules"][0])
    assert rules_cmd.main([]) == 0
    assert "rules:" in capsys.readouterr().out


def test_never_crashes_on_odd_input() -> None:
    odd = [
        "",
        "\n\n",
        "x = (",
        "lambda: (yield)",
        "class A:\n  def f(self): self.f()\n",
        "def f():\n  return f()\nf()\n",
        "for (a, b), c in z: a.backward()\n",
        "async def f():\n  async with torch.autocast('cuda'):\n    await x.backward()\n",
        "x = [" * 50 + "]" * 50,
        "import torch\ntorch.save()\ntorch.load()\n",
        "model.to()\nfrom . import x\n",
        "match x:\n  case 1:\n    loss.backward()\n",
    ]
    for src in odd:
        findings, err = analyze_source(src)
        assert isinstance(findings, list)


@pytest.mark.parametrize("sub", ["nn", "optim", "utils/data", "amp"])
def test_runs_on_installed_torch_without_crashing(sub: str) -> None:
    import torch

    root = Path(torch.__file__).parent / sub
    res = check_paths([root])
    assert res.files_checked > 0
    assert not res.parse_errors


WARN_ONLY = """\
import torch
torch.manual_seed(0)
probs = torch.softmax(torch.zeros(2, 3))
"""


@pytest.mark.parametrize(
    ("fail_on", "want"), [(None, 0), ("error", 0), ("warning", 1), ("info", 1)]
)
def test_fail_on_sets_the_exit_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fail_on: str | None, want: int
) -> None:
    f = tmp_path / "w.py"
    f.write_text(WARN_ONLY)
    argv = [str(f), "--no-config", "--format", "json"] + (["--fail-on", fail_on] if fail_on else [])
    code, out = run_check(argv, capsys)
    assert [x["severity"] for x in json.loads(out)["findings"]] == ["warning"]
    assert code == want
