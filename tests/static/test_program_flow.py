"""Facts that travel through parameters, constructors and helper chains (issue 17): each case
is a small program written here, with a corrected variant that must stay silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.static.check import check_paths

BUILD = """\
import torch.nn as nn


def build_mlp(d, classes):
    layers = [nn.Linear(d, 64), nn.ReLU(), nn.Linear(64, classes)]
    HEAD
    return nn.Sequential(*layers)


class Head(nn.Module):
    def __init__(self, d, classes):
        super().__init__()
        self.fc = nn.Linear(d, classes)

    def forward(self, x):
        return RET
"""
TRAINER = """\
import torch
import torch.nn.functional as F
from models import build_mlp


class Trainer:
    def __init__(self, model, optimizer):
        self.model = model.to("cpu")
        self.optimizer = optimizer

    def step(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


model = build_mlp(8, 3)
trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1))
for x, y in train_loader:
    trainer.step(x, y)
"""
WRAPPED = """\
import torch
import torch.nn as nn
from models import Head


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 8)
        self.head = Head(8, 3)

    def forward(self, x):
        return self.head(self.body(x))


def run_epoch(model, loader, loss_fn, opt):
    for x, y in loader:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()


net = Net()
run_epoch(net, train_loader, nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.1))
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def found(root: Path, code: str) -> list[tuple[str, int]]:
    res = check_paths([root], select=[code])
    assert not res.parse_errors
    return [(Path(f.path).name, f.line) for f in res.findings]


@pytest.mark.parametrize(("head", "want"), [("layers.append(nn.Softmax(dim=-1))", 1), ("", 0)])
def test_sequential_from_a_helper_reaches_a_trainer_through_its_constructor(
    tmp_path: Path, head: str, want: int
) -> None:
    models = BUILD.replace("HEAD", head or "pass").replace("RET", "self.fc(x)")
    root = write(tmp_path, {"models.py": models, "train.py": TRAINER})
    assert found(root, "LC301") == [("train.py", 12)] * want


@pytest.mark.parametrize(
    ("ret", "want"),
    [("torch.softmax(self.fc(x), dim=-1)", 1), ("self.fc(x)", 0)],
)
def test_head_module_in_another_file_reaches_a_loss_passed_as_a_parameter(
    tmp_path: Path, ret: str, want: int
) -> None:
    models = "import torch\n" + BUILD.replace("HEAD", "pass").replace("RET", ret)
    root = write(tmp_path, {"models.py": models, "train.py": WRAPPED})
    assert found(root, "LC301") == [("train.py", 19)] * want


def test_eval_switched_two_helpers_down_is_seen_by_the_training_loop(tmp_path: Path) -> None:
    pred = (
        "import torch\n\n\ndef predict(model, loader):\n    model.eval()\n"
        "    with torch.no_grad():\n        return [model(x) for x, _ in loader]\n\n\n"
        "def validate(model, loader):\n    return len(predict(model, loader))\n"
    )
    train = (
        "import torch\nfrom prediction import validate\n\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nmodel.train()\n"
        "for epoch in range(3):\n    for x, y in train_loader:\n        opt.zero_grad()\n"
        "        torch.nn.functional.mse_loss(model(x), y).backward()\n        opt.step()\n"
        "    validate(model, val_loader)\n"
    )
    root = write(tmp_path, {"prediction.py": pred, "train.py": train})
    # reported at the epoch loop that needs train() back (the call is line 12)
    assert found(root, "LC201") == [("train.py", 7)]
    (root / "train.py").write_text(
        train.replace("for epoch in range(3):\n", "for epoch in range(3):\n    model.train()\n")
    )
    assert found(root, "LC201") == []


@pytest.mark.parametrize(("labels", "want"), [("ids[1:]", 1), ("ids", 0)])
def test_batch_pre_shifted_in_a_dataset_file_for_a_causal_lm(
    tmp_path: Path, labels: str, want: int
) -> None:
    data = (
        "import torch\n\n\ndef example(ids):\n"
        f"    return {{'input_ids': torch.tensor(ids{'[:-1]' if want else ''}), 'labels': torch.tensor({labels})}}\n"
    )
    train = (
        "from transformers import AutoModelForCausalLM\nfrom data import example\n\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2')\nmodel.train()\n"
        "for ids in corpus:\n    model(**example(ids)).loss.backward()\n"
    )
    root = write(tmp_path, {"data.py": data, "train.py": train})
    assert found(root, "LC819") == [("data.py", 5)] * want
    (root / "train.py").write_text(
        train.replace("AutoModelForCausalLM", "MyGPT").replace(
            "from transformers import MyGPT\n", "from mygpt import MyGPT\n"
        )
    )
    assert found(root, "LC819") == []  # a model that does not shift labels itself


@pytest.mark.parametrize(("build", "want"), [("make_opt(model)", 1), ("opt", 0)])
def test_optimizer_built_by_a_helper_inside_the_step_loop(
    tmp_path: Path, build: str, want: int
) -> None:
    src = (
        "import torch\n\n\ndef make_opt(m):\n    return torch.optim.Adam(m.parameters(), lr=1e-3)\n\n\n"
        "model = torch.nn.Linear(3, 1)\nopt = make_opt(model)\n"
        f"for it in range(1000):\n    o = {build}\n    o.zero_grad()\n"
        "    model(torch.randn(8, 3)).sum().backward()\n    o.step()\n"
    )
    root = write(tmp_path, {"fit.py": src})
    assert found(root, "LC110") == [("fit.py", 11)] * want


def test_target_network_outside_the_optimizer_needs_no_grad(tmp_path: Path) -> None:
    src = (
        "import torch\nimport torch.nn.functional as F\n\n"
        "online = torch.nn.Linear(4, 2)\nlagged = torch.nn.Linear(4, 2)\n"
        "opt = torch.optim.Adam(online.parameters())\n"
        "for s, a, r, s2 in replay:\n    q = online(s).gather(1, a)\n"
        "    q2 = lagged(s2).max(1)[0]\n    loss = F.mse_loss(q, r + 0.99 * q2)\n"
        "    opt.zero_grad()\n    loss.backward()\n    opt.step()\n"
    )
    root = write(tmp_path, {"dqn.py": src})
    assert found(root, "LC113") == [("dqn.py", 9)]
    (root / "dqn.py").write_text(
        src.replace(
            "    q2 = lagged(s2).max(1)[0]\n",
            "    with torch.no_grad():\n        q2 = lagged(s2).max(1)[0]\n",
        )
    )
    assert found(root, "LC113") == []


STEP_TRAINER = """\
import torch
import torch.nn.functional as F


def build(epochs):
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30)
    return model, opt, sched


class Trainer:
    def __init__(self, model, opt, sched):
        self.model, self.opt, self.sched = model, opt, sched

    def _step(self, x, y):
        self.opt.zero_grad()
        F.cross_entropy(self.model(x), y).backward()
        self.opt.step()
        self.sched.step()

    def fit(self, loader, epochs):
        for _ in range(epochs):
            CALL


model, opt, sched = build(90)
Trainer(model, opt, sched).fit(train_loader, 90)
"""


@pytest.mark.parametrize(
    ("call", "want"),
    [
        ("losses = [self._step(x, y) for x, y in loader]", 1),
        ("self._step(*next(iter(loader)))", 0),  # one step per epoch: the schedule is right
    ],
)
def test_epoch_scheduler_stepped_in_a_step_method_called_per_batch(
    tmp_path: Path, call: str, want: int
) -> None:
    root = write(tmp_path, {"trainer.py": STEP_TRAINER.replace("CALL", call)})
    assert found(root, "LC112") == [("trainer.py", 20)] * want


def test_loss_from_a_partial_and_a_helper(tmp_path: Path) -> None:
    src = (
        "from functools import partial\nimport torch\nimport torch.nn.functional as F\n\n\n"
        "def make_loss():\n    return partial(F.binary_cross_entropy_with_logits, reduction='mean')\n\n\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Sigmoid())\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nloss_fn = make_loss()\n"
        "for x, y in train_loader:\n    opt.zero_grad()\n    loss_fn(model(x), y).backward()\n"
        "    opt.step()\n"
    )
    root = write(tmp_path, {"t.py": src})
    assert found(root, "LC302") == [("t.py", 15)]
    (root / "t.py").write_text(src.replace(", torch.nn.Sigmoid()", ""))
    assert found(root, "LC302") == []


def test_zero_grad_only_on_logging_steps(tmp_path: Path) -> None:
    src = (
        "import torch\n\n\ndef opt_step(opt, step):\n    opt.step()\n    if step % 100 == 0:\n"
        "        print(step)\n        opt.zero_grad()\n\n\n"
        "model = torch.nn.Linear(4, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for step, (x, y) in enumerate(train_loader):\n"
        "    torch.nn.functional.mse_loss(model(x), y).backward()\n    opt_step(opt, step)\n"
    )
    root = write(tmp_path, {"t.py": src})
    # reported at the conditional zero_grad() that has to move out of the if
    assert found(root, "LC114") == [("t.py", 8)]
    (root / "t.py").write_text(src.replace("        opt.zero_grad()\n", "    opt.zero_grad()\n"))
    assert found(root, "LC114") == []


def test_teacher_in_a_module_forward_with_backward_in_another_file(tmp_path: Path) -> None:
    distill = (
        "import torch\nimport torch.nn.functional as F\n\n\n"
        "class Distiller(torch.nn.Module):\n    def __init__(self, student, teacher):\n"
        "        super().__init__()\n        self.student, self.teacher = student, teacher\n\n"
        "    def forward(self, x):\n        s = self.student(x)\n        t = self.teacher(x)\n"
        "        return F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1), reduction='batchmean')\n"
    )
    train = (
        "import torch\nfrom distill import Distiller\n\n"
        "d = Distiller(torch.nn.Linear(4, 2), torch.nn.Linear(4, 2))\n"
        "opt = torch.optim.SGD(d.student.parameters(), lr=0.1)\n"
        "for x, _ in train_loader:\n    opt.zero_grad()\n    d(x).backward()\n    opt.step()\n"
    )
    root = write(tmp_path, {"distill.py": distill, "train.py": train})
    assert found(root, "LC113") == [("distill.py", 12)]
    (root / "distill.py").write_text(
        distill.replace(
            "        t = self.teacher(x)\n",
            "        with torch.no_grad():\n            t = self.teacher(x)\n",
        )
    )
    assert found(root, "LC113") == []


def test_pretrained_model_handed_to_a_trainer_constructor(tmp_path: Path) -> None:
    modeling = (
        "from transformers import AutoTokenizer, BertForTokenClassification\n\n\n"
        "def load(name):\n    model = BertForTokenClassification.from_pretrained(name)\n"
        "    return model, AutoTokenizer.from_pretrained(name)\n"
    )
    train = (
        "import torch\nfrom modeling import load\n\n\nclass NerTrainer:\n"
        "    def __init__(self, model, loader):\n        self.model = model\n        self.loader = loader\n"
        "        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-5)\n\n"
        "    def train(self):\n        for batch in self.loader:\n            TRAIN\n"
        "            self.model(**batch).loss.backward()\n            self.opt.step()\n"
        "            self.opt.zero_grad()\n\n\n"
        "model, tok = load('bert-base-cased')\nNerTrainer(model, train_loader).train()\n"
    )
    root = write(tmp_path, {"modeling.py": modeling, "train.py": train.replace("TRAIN", "pass")})
    assert [f for f, _ in found(root, "LC205")] == ["train.py"]
    (root / "train.py").write_text(train.replace("TRAIN", "self.model.train()"))
    assert found(root, "LC205") == []


SAMPLER_DATA = """\
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


def build_loader(dataset, batch_size):
    sampler = DistributedSampler(dataset, shuffle=True)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler), sampler
"""
SAMPLER_TRAIN = """\
import torch
from data import build_loader

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader, sampler = build_loader(dataset, 32)
for epoch in range(10):
    SET_EPOCH
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
"""


def test_set_epoch_reported_at_the_epoch_loop_of_the_file_that_trains(tmp_path: Path) -> None:
    """LC504 points where set_epoch() belongs: the epoch loop of the script that trains on the
    helper's loader, not the sampler in the data module (reported once, not in both)."""
    train = SAMPLER_TRAIN.replace("SET_EPOCH", "pass")
    root = write(tmp_path, {"data.py": SAMPLER_DATA, "train.py": train})
    assert found(root, "LC504") == [("train.py", 7)]
    (root / "train.py").write_text(SAMPLER_TRAIN.replace("SET_EPOCH", "sampler.set_epoch(epoch)"))
    assert found(root, "LC504") == []
    # nothing checked trains on the loader: the sampler itself is the place to report
    (root / "train.py").write_text("from data import build_loader\nbuild_loader(ds, 8)\n")
    assert found(root, "LC504") == [("data.py", 6)]


def test_set_epoch_reported_at_the_loop_over_the_sampled_loader_in_a_trainer(
    tmp_path: Path,
) -> None:
    src = """\
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


class Trainer:
    def __init__(self, model, dataset):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
        self.sampler = DistributedSampler(dataset)
        self.loader = DataLoader(dataset, batch_size=8, sampler=self.sampler)

    def _step(self, batch):
        self.opt.zero_grad()
        self.model(batch).sum().backward()
        self.opt.step()

    def train_epoch(self):
        for batch in self.loader:
            self._step(batch)
"""
    root = write(tmp_path, {"trainer.py": src})
    assert found(root, "LC504") == [("trainer.py", 19)]
