"""--spec: matches, deviations, assumptions, not-found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.static import check as check_cmd
from toolkit.static.compliance import check_compliance, load_spec

SCRIPT = """\
import argparse
import torch
from transformers import AutoModelForCausalLM, TrainingArguments, Trainer
from peft import LoraConfig, get_peft_model

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.1-8B", torch_dtype=torch.bfloat16)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]))
targs = TrainingArguments(output_dir="out/llama", learning_rate=args.lr, per_device_train_batch_size=8,
                          num_train_epochs=args.epochs, bf16=True, seed=42)
Trainer(model=model, args=targs, train_dataset=ds).train()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(SCRIPT)
    return tmp_path


def test_matches_deviations_assumptions(project: Path) -> None:
    spec_file = project / "spec.yaml"
    spec_file.write_text(
        "model: meta-llama/Llama-3.1-8B\nlearning_rate: 2e-4\nbatch_size: 8\nepochs: 3\n"
        "precision: bf16\nmethod: qlora\nlora:\n  r: 16\ngpus: 1\n"
    )
    spec = load_spec(spec_file)
    assert spec["lora_r"] == 16
    rep = check_compliance(spec, [project / "train.py"])
    status = {i.key: i.status for i in rep.items}
    assert status["learning_rate"] == "deviation"
    assert status["method"] == "deviation"
    assert status["batch_size"] == status["epochs"] == status["model"] == "match"
    assert status["precision"] == "match" and status["lora_r"] == "match"
    assert status["gpus"] == "not_found"
    assert status["seed"] == "assumption" and status["output_dir"] == "assumption"
    lr = next(i for i in rep.items if i.key == "learning_rate")
    assert lr.found[0].line == 7 and lr.found[0].value == 1e-4


def test_cli_json_and_exit(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = project / "spec.yaml"
    spec_file.write_text("learning_rate: 1e-4\nepochs: 3\n")
    code = check_cmd.main(
        [str(project / "train.py"), "--spec", str(spec_file), "--format", "json", "--select", "LC4"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {m["key"] for m in data["compliance"]["matches"]} == {"learning_rate", "epochs"}
    spec_file.write_text("learning_rate: 3e-5\n")
    code = check_cmd.main([str(project / "train.py"), "--spec", str(spec_file), "--select", "LC4"])
    out = capsys.readouterr().out
    assert code == 1 and "deviation" in out and "learning_rate" in out


def test_bad_spec(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError):
        load_spec(bad)
    with pytest.raises(InputError):
        load_spec(tmp_path / "missing.yaml")


def test_full_fp32_derived(tmp_path: Path) -> None:
    f = tmp_path / "t.py"
    f.write_text(
        "import torch\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\nfor x in dl:\n    opt.zero_grad()\n    m(x).sum().backward()\n    opt.step()\n"
    )
    rep = check_compliance({"method": "lora", "precision": "bf16", "learning_rate": 0.1}, [f])
    status = {i.key: i.status for i in rep.items}
    assert status == {"method": "deviation", "precision": "deviation", "learning_rate": "match"}
