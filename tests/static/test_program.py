"""Whole-program facts: each case is a small package of files checked together (written here),
with the finding it must give and a corrected twin that must stay clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.static.check import check_paths

MODEL_SOFTMAX = """\
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return F.softmax(self.fc(x), dim=-1)
"""
MODEL_LOGITS = MODEL_SOFTMAX.replace("F.softmax(self.fc(x), dim=-1)", "self.fc(x)")
TRAIN_CE = """\
import torch
from model import Net

torch.manual_seed(0)
model = Net()
criterion = torch.nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train_loader:
    opt.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    opt.step()
"""

HELPERS = """\
import torch


def evaluate(model, loader):
    model.eval()
    total = 0.0
    for x, y in loader:
        total += torch.nn.functional.cross_entropy(model(x), y).item()
    return total


def evaluate_and_restore(model, loader):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for x, y in loader:
            total += torch.nn.functional.cross_entropy(model(x), y).item()
    model.train()
    return total


def clear(opt):
    opt.zero_grad(set_to_none=True)


def make_loader(dataset, batch_size):
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


def make_sharded_loader(dataset, batch_size):
    sampler = torch.utils.data.distributed.DistributedSampler(dataset)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler)


def run_epoch(loader, sampler, epoch):
    sampler.set_epoch(epoch)
    return list(loader)
"""

TRAIN_EVAL = """\
import torch
from utils.helpers import {fn}

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
for epoch in range(3):
    model.train()
    for x, y in train_loader:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            {call}
"""

TRAIN_HELPER_CLEARS = """\
import torch
from utils.helpers import clear

torch.manual_seed(0)
model = torch.nn.Linear(8, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train_loader:
    {clear}
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
"""

CALLER_NO_GRAD = """\
import torch
from utils.helpers import evaluate

torch.manual_seed(0)
model = torch.nn.Linear(8, 2)
{ctx}
    score = evaluate(model, val_loader)
"""

DDP_LOADER = """\
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from utils.helpers import {fn}, run_epoch

dist.init_process_group("gloo")
torch.manual_seed(0)
model = DDP(torch.nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
train_loader = {fn}(train_set, 32)
for epoch in range(3):
    for x, y in train_loader:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
"""

HF_LOADER = """\
from transformers import AutoModelForSequenceClassification


def load(name):
    model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=2)
    return model
"""
HF_TRAIN = """\
import torch
from loading import load

torch.manual_seed(0)
model = load("bert-base-uncased")
opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
{train}
for batch in train_loader:
    opt.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    opt.step()
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def codes(root: Path, select: str) -> list[tuple[str, int, str]]:
    res = check_paths([root], select=[select])
    assert not res.parse_errors
    return [(Path(f.path).name, f.line, f.message) for f in res.findings]


@pytest.mark.parametrize(("model", "want"), [(MODEL_SOFTMAX, 1), (MODEL_LOGITS, 0)])
def test_softmax_in_forward_of_a_class_in_another_file(tmp_path: Path, model: str, want: int):
    root = write(tmp_path, {"model.py": model, "train.py": TRAIN_CE})
    got = codes(root, "LC301")
    assert len(got) == want
    if want:
        assert got[0][:2] == ("train.py", 10)


@pytest.mark.parametrize(
    ("fn", "call", "want"),
    [
        ("evaluate", "evaluate(model, val_loader)", 1),
        ("evaluate_and_restore", "evaluate_and_restore(model, val_loader)", 0),
    ],
)
def test_eval_switched_in_a_helper_of_another_file(tmp_path: Path, fn: str, call: str, want: int):
    root = write(
        tmp_path,
        {
            "utils/__init__.py": "",
            "utils/helpers.py": HELPERS,
            "train.py": TRAIN_EVAL.format(fn=fn, call=call),
        },
    )
    got = codes(root, "LC201")
    assert len(got) == want, got
    if want:
        assert got[0][0] == "train.py" and "evaluate()" in got[0][2]


@pytest.mark.parametrize(("clear", "want"), [("clear(opt)", 0), ("pass", 1)])
def test_zero_grad_in_a_helper_of_another_file(tmp_path: Path, clear: str, want: int):
    files = {"utils/helpers.py": HELPERS, "train.py": TRAIN_HELPER_CLEARS.format(clear=clear)}
    if want:  # without the helper's clear, nothing in the program clears the gradients
        files["utils/helpers.py"] = HELPERS.replace("opt.zero_grad(set_to_none=True)", "pass")
    assert len(codes(write(tmp_path, files), "LC101")) == want


@pytest.mark.parametrize(("ctx", "want"), [("with torch.no_grad():", 0), ("if True:", 1)])
def test_no_grad_in_the_caller_in_another_file(tmp_path: Path, ctx: str, want: int):
    root = write(tmp_path, {"utils/helpers.py": HELPERS, "run.py": CALLER_NO_GRAD.format(ctx=ctx)})
    got = [g for g in codes(root, "LC204") if g[0] == "helpers.py"]
    assert len(got) == want, got


@pytest.mark.parametrize(("fn", "want"), [("make_loader", 1), ("make_sharded_loader", 0)])
def test_ddp_loader_built_in_another_file(tmp_path: Path, fn: str, want: int):
    root = write(tmp_path, {"utils/helpers.py": HELPERS, "train.py": DDP_LOADER.format(fn=fn)})
    got = codes(root, "LC503")
    assert len(got) == want, got
    if want:
        # reported where the loader is built (the line to fix), naming the DDP script
        assert got[0][0] == "helpers.py" and "make_loader()" in got[0][2]
        assert "train.py:10" in got[0][2]
    assert codes(root, "LC504") == []  # set_epoch is called by run_epoch in helpers.py


@pytest.mark.parametrize(("train", "want"), [("", 1), ("model.train()", 0)])
def test_pretrained_model_from_a_helper_left_in_eval(tmp_path: Path, train: str, want: int):
    root = write(tmp_path, {"loading.py": HF_LOADER, "train.py": HF_TRAIN.format(train=train)})
    assert len(codes(root, "LC205")) == want


SNAPSHOT = """\
import torch
import torch.distributed as dist


class Trainer:
    def __init__(self, model, gpu_id):
        dist.init_process_group("nccl")
        self.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[gpu_id])
        self.gpu_id = gpu_id

    def _save(self, epoch):
        torch.save(self.model.module.state_dict(), f"ckpt_{{epoch}}.pt")

    def train(self, epochs):
        for epoch in range(epochs):
            if {guard}:
                self._save(epoch)
"""


@pytest.mark.parametrize(
    ("guard", "want"), [("self.gpu_id == 0 and epoch % 5 == 0", 0), ("epoch % 5 == 0", 1)]
)
def test_rank_guard_in_the_caller(tmp_path: Path, guard: str, want: int):
    root = write(tmp_path, {"trainer.py": SNAPSHOT.format(guard=guard)})
    assert len(codes(root, "LC704")) == want


def test_calls_last_keeps_source_order_and_matches_a_full_scan() -> None:
    from toolkit.static.engine import parse_facts

    src = (
        "import torch\nimport torch.nn.functional as F\nfrom torch.cuda.amp import autocast as ac\n"
        "x = F.softmax(y)\nwith ac():\n    z = torch.softmax(x, 1)\n"
        "m = AutoModel.from_pretrained('a')\nt = trainer.train()\nu = my_pretrain()\n"
    )
    mod, _ = parse_facts(src)
    assert mod is not None
    got = [(q, c.lineno) for q, c in mod.calls_last("softmax", "autocast", "softmax")]
    scan = [(mod.resolve(c.func), c.lineno) for c in mod.all_calls]  # what a full scan keeps
    assert got == [(q, line) for q, line in scan if q.rsplit(".", 1)[-1] in ("softmax", "autocast")]
    assert sorted(got) == [
        ("torch.cuda.amp.autocast", 5),
        ("torch.nn.functional.softmax", 4),
        ("torch.softmax", 6),
    ]
    ends = [(q, line) for q, line in scan if q.rsplit(".", 1)[-1].endswith("train")]
    assert sorted(ends) == sorted((q, c.lineno) for q, c in mod.calls_last(endswith="train"))
    assert [q for q, _c in mod.calls_last(endswith="train")] == ["trainer.train", "my_pretrain"]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


TRAIN = "import torch\nimport copy\n\nif __name__ == '__main__':\n    print(copy.deepcopy(torch.zeros(1)))\n"
SHADOW = "import torch\n\n\ndef deepcopy(x):\n    return torhc.clone(x)\n"


def test_stdlib_import_does_not_reach_a_package_module_of_that_name(tmp_path: Path) -> None:
    """`import copy` inside a package loads the standard library, not the package's own
    copy.py (torch/_dynamo/polyfills/copy.py was linked to every `import copy`)."""
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/train.py": TRAIN, "pkg/copy.py": SHADOW})
    res = check_paths([tmp_path / "pkg"])
    assert not [f for f in res.findings if f.path.endswith("copy.py")]


def test_stdlib_name_next_to_a_script_is_the_local_module(tmp_path: Path) -> None:
    """A script's folder comes first on sys.path: there `import copy` loads ./copy.py."""
    _write(tmp_path, {"scripts/train.py": TRAIN, "scripts/copy.py": SHADOW})
    res = check_paths([tmp_path / "scripts"])
    assert [f.code for f in res.findings if f.path.endswith("copy.py")] == ["LC001"]


def test_own_package_named_like_a_library_is_reached_by_its_full_name(tmp_path: Path) -> None:
    """A project that is itself `timm` imports `timm.models.vit` from its own files."""
    _write(
        tmp_path,
        {
            "repo/timm/__init__.py": "",
            "repo/timm/models/__init__.py": "",
            "repo/timm/models/vit.py": SHADOW,
            "repo/train.py": "import torch\nimport timm.models.vit as vit\n\n"
            "if __name__ == '__main__':\n    vit.deepcopy(torch.zeros(1))\n",
        },
    )
    res = check_paths([tmp_path / "repo"])
    assert [f.code for f in res.findings if f.path.endswith("vit.py")] == ["LC001"]


def test_relative_import_reaches_the_module_its_dots_name(tmp_path: Path) -> None:
    """`from ..helpers import deepcopy` in pkg/a/train.py is pkg/helpers.py, not the
    pkg/a/helpers.py that a match on the name alone also found."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a/__init__.py": "",
            "pkg/helpers.py": SHADOW,
            "pkg/a/helpers.py": SHADOW,
            "pkg/a/train.py": "import torch\nfrom ..helpers import deepcopy\n\n"
            "if __name__ == '__main__':\n    deepcopy(torch.zeros(1))\n",
        },
    )
    res = check_paths([tmp_path / "pkg"])
    flagged = sorted(Path(f.path).relative_to(tmp_path).as_posix() for f in res.findings)
    assert flagged == ["pkg/helpers.py"]
