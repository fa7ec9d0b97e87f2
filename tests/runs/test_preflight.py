"""Pre-flight gates on real files: logging backend importable, validation split present,
config echoed and confirmed by its hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.runs.preflight import main

CONFIG = """\
model: {name: gpt2, lr: 3.0e-4}
data: {train: data/train.jsonl, val_file: data/val.jsonl}
report_to: [tensorboard]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "val.jsonl").write_text('{"text": "held out"}\n')
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    (tmp_path / "train.py").write_text("from torch.utils.tensorboard import SummaryWriter\n")
    return tmp_path


def preflight(capsys, *args: str) -> tuple[int, dict]:
    code = main(["cfg.yaml", "--script", "train.py", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def gate(res: dict, name: str) -> dict:
    return next(g for g in res["gates"] if g["name"] == name)


def test_echo_then_confirm_then_changed_config(project: Path, capsys) -> None:
    code, res = preflight(capsys)
    assert code == 1 and not res["confirmed"] and res["record"] is None
    assert gate(res, "logging")["ok"] and gate(res, "validation")["ok"]
    assert ["data.val_file", "data/val.jsonl"] in res["echo"]
    digest = res["sha256"]
    code, res = preflight(capsys, "--confirm", digest)
    assert code == 0 and res["ok"] and Path(res["record"]).is_file()
    (project / "cfg.yaml").write_text(CONFIG.replace("3.0e-4", "1.0e-3"))
    code, res = preflight(capsys, "--confirm", digest)
    assert code == 1 and "does not match" in gate(res, "config")["detail"]


def test_missing_validation_and_logger(project: Path, capsys) -> None:
    (project / "data" / "val.jsonl").unlink()
    code, res = preflight(capsys)
    assert (
        code == 1
        and "data.val_file: data/val.jsonl does not exist" in gate(res, "validation")["detail"]
    )
    (project / "cfg.yaml").write_text("model: {lr: 1.0e-3}\nreport_to: none\n")
    (project / "train.py").write_text("print('training')\n")
    code, res = preflight(capsys)
    assert not gate(res, "logging")["ok"] and "report_to" in gate(res, "logging")["detail"]
    assert (
        not gate(res, "validation")["ok"]
        and "no validation split" in gate(res, "validation")["detail"]
    )


def test_backend_not_importable_and_script_validation(project: Path, capsys) -> None:
    (project / "cfg.yaml").write_text("model: {lr: 1.0e-3}\n")
    (project / "train.py").write_text("import comet_ml\n\nval_loader = make_loader('val')\n")
    code, res = preflight(capsys)
    log = gate(res, "logging")
    assert not log["ok"] and "comet" in log["detail"] and "train.py:1" in log["evidence"][0]
    assert gate(res, "validation")["ok"] and "train.py:3" in gate(res, "validation")["evidence"][0]


def test_unreadable_config_is_an_input_error(project: Path, capsys) -> None:
    from toolkit.cli import run

    (project / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(SystemExit) as exc:
        run(main, "preflight", ["bad.yaml"])
    assert exc.value.code == 2 and "bad.yaml: not a YAML/JSON config" in capsys.readouterr().err
