"""The transformers Trainer and Lightning callbacks give the runner's report on the same model:
same steps, same losses and gradient norms (full batch, constant-LR SGD), same verdict."""

import json

import pytest
import torch

from toolkit.profiling.validator import runner as l0_runner

from .fixtures import tiny_gpt2

STEPS = 12
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def entry_report() -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        l0_runner.main(
            ["--entry", "tests.profiling.fixtures.tiny_gpt2:build_spec", "--steps", str(STEPS),
             "--warmup-steps", "2", "--layer-steps", "0", "--skip-l0", "--max-seconds", "600", "--format", "json"]
        )  # fmt: skip
    return json.loads(out.getvalue())


def as_dict(report) -> dict:
    from toolkit import cli

    return cli.to_jsonable(report)


def agree(cb: dict, entry: dict) -> None:
    tc, te = cb["training"], entry["training"]
    assert tc["steps"] == te["steps"] == STEPS
    assert tc["losses"] == pytest.approx(te["losses"], rel=1e-4)
    assert tc["grad"]["global_norms"] == pytest.approx(te["grad"]["global_norms"], rel=1e-3)
    assert cb["verdict"] == entry["verdict"] == "PASS", cb["checks"]
    shared = ("loss trend", "gradients finite", "gradient norm", "initial loss", "label range")
    status = {
        r: {c["name"]: c["status"] for c in x["checks"]} for r, x in (("cb", cb), ("e", entry))
    }
    assert {n: status["cb"].get(n) for n in shared} == {n: status["e"].get(n) for n in shared}
    assert tc["tokens_per_step"] == te["tokens_per_step"] == tiny_gpt2.N * tiny_gpt2.SEQ
    assert tc["flops_per_step"] == pytest.approx(te["flops_per_step"], rel=0.01)
    assert "optimizers" not in status["cb"]  # accelerate's optimizer wrapper is one optimizer


def test_trainer_callback_agrees_with_entry(entry_report, tmp_path):
    from transformers import Trainer, TrainingArguments

    from toolkit.profiling.validator.hf_callback import LabcoatCallback

    model = tiny_gpt2.model()
    opt = torch.optim.SGD(model.parameters(), lr=tiny_gpt2.LR)
    cb = LabcoatCallback(max_steps=STEPS, warmup_steps=2, print_report=False)
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=tiny_gpt2.N, max_steps=100,
        max_grad_norm=0.0, logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True,
    )  # fmt: skip
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    Trainer(model=model, args=args, train_dataset=tiny_gpt2.rows(), callbacks=[cb],
            optimizers=(opt, sched)).train()  # fmt: skip
    agree(as_dict(cb.report), entry_report)


def test_lightning_callback_agrees_with_entry(entry_report):
    lightning = pytest.importorskip("lightning")
    from torch.utils.data import DataLoader

    from toolkit.profiling.validator.lightning_callback import LabcoatCallback

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = tiny_gpt2.model()

        def training_step(self, batch, i):
            return self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=tiny_gpt2.LR)

    cb = LabcoatCallback(max_steps=STEPS, warmup_steps=2, print_report=False)
    trainer = lightning.Trainer(
        max_steps=100, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[cb],
    )  # fmt: skip
    trainer.fit(Module(), DataLoader(tiny_gpt2.rows(), batch_size=tiny_gpt2.N))
    agree(as_dict(cb.report), entry_report)
