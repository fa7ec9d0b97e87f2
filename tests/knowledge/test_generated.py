"""Tables in knowledge/*.md and skill references are generated from the toolkit; fail when stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_knowledge.py"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_knowledge", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_generated_tables_are_current():
    stale = _gen().run(check=True)
    assert stale == [], f"stale generated tables in {stale}: run python scripts/gen_knowledge.py"


def test_check_mode_cli_exits_zero_when_current():
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_generator_is_used_in_some_knowledge_file():
    gen = _gen()
    text = "".join(p.read_text(encoding="utf-8") for p in gen.targets())
    for name in gen.GENERATORS:
        assert f"<!-- generated: {name} -->" in text, name


def test_check_detects_a_stale_table_and_writes_nothing(tmp_path):
    gen = _gen()
    src = (ROOT / "knowledge" / "hardware.md").read_text(encoding="utf-8")
    edited = src.replace("| `h100-sxm` |", "| `h100-sxm-edited` |")
    assert edited != src
    target = tmp_path / "hardware.md"
    target.write_text(edited, encoding="utf-8")
    assert gen.run(check=True, directory=tmp_path) == [str(target)]
    assert target.read_text(encoding="utf-8") == edited
    assert gen.run(check=False, directory=tmp_path) == [str(target)]
    assert target.read_text(encoding="utf-8") == src


def test_tables_match_toolkit_values():
    from toolkit.compute.chinchilla import chinchilla
    from toolkit.hardware.specs import get_spec

    hw = (ROOT / "knowledge" / "hardware.md").read_text(encoding="utf-8")
    h100 = get_spec("h100-sxm")
    row = next(line for line in hw.splitlines() if line.startswith("| `h100-sxm` |"))
    assert f"| {h100.peak_tflops['bf16']:g} |" in row
    sl = (ROOT / "knowledge" / "scaling-laws.md").read_text(encoding="utf-8")
    p = chinchilla(params=70e9)
    assert f"| {p.params:.3g} | {p.tokens:.3g} | {p.compute_flops:.3g} |" in sl


def test_unknown_block_name_is_an_error(tmp_path):
    gen = _gen()
    (tmp_path / "x.md").write_text("<!-- generated: nope -->\n<!-- end generated -->\n")
    try:
        gen.run(check=True, directory=tmp_path)
    except SystemExit as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("unknown block accepted")
