"""``LabcoatCallback`` for the transformers ``Trainer`` (optional extra: ``pip install labcoat[hf]``).

    from toolkit.profiling.validator.hf_callback import LabcoatCallback
    cb = LabcoatCallback(max_steps=50)
    Trainer(model=model, args=args, train_dataset=ds, callbacks=[cb]).train()
    cb.report.verdict  # "PASS" or "FAIL", the same checks as python -m toolkit.profiling.l0_runner

The Trainer is asked to stop after ``max_steps`` observed steps (or ``max_seconds``); gradients
are read before the Trainer clips them (``max_grad_norm``), as in ``--script`` mode.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from toolkit.profiling.validator.callback import ObservedRun, Options


class LabcoatCallback(TrainerCallback):
    def __init__(self, **options: Any) -> None:
        """Keyword arguments as :class:`toolkit.profiling.validator.callback.Options`."""
        self.run = ObservedRun(Options(**options), framework="transformers Trainer")
        self.report = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.run.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run.should_stop():
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.report = self.run.finish()
