"""``LabcoatCallback`` for Lightning (optional extra: ``pip install labcoat[lightning]``).

    from toolkit.profiling.validator.lightning_callback import LabcoatCallback
    cb = LabcoatCallback(max_steps=50)
    lightning.Trainer(callbacks=[cb], ...).fit(module, loader)
    cb.report.verdict  # "PASS" or "FAIL", the same checks as python -m toolkit.profiling.l0_runner

Lightning steps its optimizers with a closure (forward and backward run inside
``optimizer.step``); the observer reads gradients after the closure's backward, before any
``gradient_clip_val`` clipping.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from toolkit.profiling.validator.callback import ObservedRun, Options


class LabcoatCallback(Callback):
    def __init__(self, **options: Any) -> None:
        """Keyword arguments as :class:`toolkit.profiling.validator.callback.Options`."""
        self.run = ObservedRun(Options(**options), framework="Lightning")
        self.report = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.run.start()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        if self.run.should_stop():
            trainer.should_stop = True

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.report = self.run.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run.obs is not None and self.report is None:
            self.report = self.run.finish(exception)
