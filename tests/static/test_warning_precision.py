"""Warning precision on code shapes met in real repositories (issue 17): each case is a
pattern that gave a false warning on pytorch/examples, peft or torchtitan, written here, with a
variant that must still warn."""

from __future__ import annotations

from pathlib import Path

from toolkit.static.check import check_paths

EVAL_LOOP = """\
import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))
with torch.no_grad():
    for x in batches:
        y = model(x)
"""


def _codes(path: Path, select: str) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in check_paths([path], select=[select]).findings]


def test_warnings_in_test_files_are_info_errors_are_not(tmp_path: Path) -> None:
    (tmp_path / "evaluate.py").write_text(EVAL_LOOP)
    (tmp_path / "test_model.py").write_text(EVAL_LOOP)
    assert _codes(tmp_path / "evaluate.py", "LC203") == [("LC203", "warning")]
    assert _codes(tmp_path / "test_model.py", "LC203") == [("LC203", "info")]
    never_cleared = (
        "import torch\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters())\n"
        "for x in data:\n    model(x).sum().backward()\n    opt.step()\n"
    )
    (tmp_path / "test_train.py").write_text(never_cleared)
    assert _codes(tmp_path / "test_train.py", "LC101") == [("LC101", "error")]


def test_lc701_skips_a_program_that_writes_its_own_checkpoints(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "requirements.txt").write_text("torch>=1.11\n")
    (tmp_path / "train.py").write_text("import torch\nstate = torch.load(path)\n")
    assert _codes(tmp_path / "train.py", "LC701") == [("LC701", "warning")]
    (tmp_path / "generate.py").write_text("import torch\ntorch.save(data, 'traindata.pt')\n")
    assert _codes(tmp_path, "LC701") == []
    (tmp_path / "train.py").write_text(
        "import torch\nstate = torch.load(path)\ntorch.save(state, path)\n"
    )
    assert _codes(tmp_path / "train.py", "LC701") == []


GEN = """\
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("gpt2")
model = AutoModelForCausalLM.from_pretrained("gpt2")


def preprocess(examples):
    return tokenizer(examples["text"], padding="max_length", truncation=True)


def sample(prompts):
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    return model.generate(**enc)
"""


def test_lc802_flags_prompts_for_generate_not_padded_training_text(tmp_path: Path) -> None:
    f = tmp_path / "gen.py"
    f.write_text(GEN)
    (hit,) = check_paths([f], select=["LC802"]).findings
    assert hit.line == 12
    f.write_text(
        GEN.replace('enc = tokenizer(prompts, padding=True, return_tensors="pt")', "enc = prompts")
    )
    assert _codes(f, "LC802") == []


def test_lc203_skips_pipeline_classes(tmp_path: Path) -> None:
    body = """\
import torch
from diffusers import StableDiffusionPipeline


class MyPipeline(BASE):
    @torch.no_grad()
    def __call__(self, latents, steps):
        for t in steps:
            latents = self.unet(latents, t)
        return latents
"""
    f = tmp_path / "pipe.py"
    f.write_text(body.replace("BASE", "StableDiffusionPipeline"))
    assert _codes(f, "LC203") == []
    f.write_text(body.replace("BASE", "torch.nn.Module").replace("self.unet(", "self.net(") + "\n")
    assert _codes(f, "LC203") == [("LC203", "warning")]


def test_lc501_skips_iterable_datasets(tmp_path: Path) -> None:
    f = tmp_path / "data.py"
    f.write_text(
        "from torch.utils.data import DataLoader, IterableDataset\n"
        "class Stream(IterableDataset):\n    def __iter__(self):\n        yield 1\n"
        "train_iterator = make_pipe()\n"
        "train_loader = DataLoader(train_iterator, batch_size=8)\n"
        "train_ds = Stream()\n"
        "train_loader2 = DataLoader(train_ds, batch_size=8)\n"
        "train_set = load()\n"
        "train_loader3 = DataLoader(train_set, batch_size=8)\n"
    )
    hits = check_paths([f], select=["LC501"]).findings
    assert [h.line for h in hits] == [10]


def test_lc203_skips_trainer_subclasses(tmp_path: Path) -> None:
    f = tmp_path / "my_trainer.py"
    f.write_text(
        "import torch\nfrom transformers import Trainer\n\n\n"
        "class DPOLike(Trainer):\n    def ref_logps(self, model, batches):\n"
        "        with torch.no_grad():\n            for b in batches:\n"
        "                out = model(b)\n        return out\n"
    )
    assert _codes(f, "LC203") == []


SHARED = """\
import torch
import torch.nn.functional as F

model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.2), torch.nn.Linear(4, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def run_epoch(loader, training):
    with torch.set_grad_enabled(training):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            BODY
"""


def test_lc203_one_function_for_training_and_evaluation_without_mode_switches(
    tmp_path: Path,
) -> None:
    f = tmp_path / "epoch.py"
    gated = "if training:\n                opt.zero_grad()\n                loss.backward()\n                opt.step()"
    f.write_text(SHARED.replace("BODY", gated))
    # at the set_grad_enabled block the evaluation pass runs in (the forward is line 11)
    assert [(x.code, x.line) for x in check_paths([f], select=["LC203"]).findings] == [("LC203", 9)]
    f.write_text(
        SHARED.replace("BODY", gated).replace(
            "    with torch", "    model.train(training)\n    with torch"
        )
    )
    assert _codes(f, "LC203") == []
    amp = (
        "if scaler is not None:\n                scaler.scale(loss).backward()\n"
        "            else:\n                loss.backward()"
    )
    f.write_text(SHARED.replace("BODY", amp))
    assert _codes(f, "LC203") == []  # both arms train: not an evaluation pass


def test_undefined_name_hints_and_flake8_noqa(tmp_path: Path) -> None:
    f = tmp_path / "train.py"
    body = (
        "import torch\n\n\ndef run(model, val_loader, is_frozendict):\n"
        "    for x in val_laoder:\n        model(x)\n    return frozendict(NAME)\n\n\n"
        "if __name__ == '__main__':\n    run(torch.nn.Linear(2, 2), [], None)\n"
    )
    f.write_text(body.replace("NAME", "1"))
    hits = check_paths([f], select=["LC001"]).findings
    assert [(h.line, "val_loader" in h.message) for h in hits] == [(5, True)]
    # a name that only adds a prefix to one in scope is another name, not a typo
    assert not any("frozendict" in h.message for h in hits)
    f.write_text(body.replace("in val_laoder:", "in val_laoder:  # noqa: F821"))
    assert check_paths([f], select=["LC001"]).findings == []
