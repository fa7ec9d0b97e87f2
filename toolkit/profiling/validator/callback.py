"""The runner's measurements inside a framework's own training loop (transformers Trainer,
Lightning): the ``--script`` observer installed for the length of ``train()``, and the same report.

Framework adapters (``hf_callback.py``, ``lightning_callback.py``) call :meth:`ObservedRun.start`
when training begins, :meth:`ObservedRun.should_stop` after each step (the framework stops its
loop itself: nothing is raised into it) and :meth:`ObservedRun.finish` when training ends.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit import cli
from toolkit.profiling.validator.observer import Observer, hooks
from toolkit.profiling.validator.report import RuntimeReport, render
from toolkit.profiling.validator.script_mode import observed_report
from toolkit.profiling.validator.thresholds import Thresholds, load_thresholds


@dataclass
class Options:
    """As the runner's flags: ``max_steps`` (--steps), ``max_seconds`` from training start,
    ``warmup_steps``, ``peak_tflops``/``gpu``/``dtype`` for MFU, ``baseline`` YAML thresholds."""

    max_steps: int = 50
    max_seconds: float = 600.0
    warmup_steps: int = 5
    peak_tflops: float | None = None
    gpu: str | None = None
    dtype: str | None = None
    baseline: Path | None = None
    report_json: Path | None = None  # also write the JSON report here
    print_report: bool = True  # print the text report to stderr at the end


class ObservedRun:
    def __init__(self, options: Options, framework: str) -> None:
        self.options, self.framework = options, framework
        self.thresholds = load_thresholds(options.baseline) if options.baseline else Thresholds()
        self.report: RuntimeReport | None = None
        self.obs: Observer | None = None
        self._hooks = None

    def start(self) -> None:
        t0 = time.perf_counter()
        self.t_start = t0
        self.obs = Observer(
            self.options.max_steps, t0 + self.options.max_seconds, t0, raise_on_stop=False
        )
        self.obs.optimizer_built()  # the framework built its optimizer before training began
        self._hooks = hooks(self.obs)
        self._hooks.__enter__()

    def should_stop(self) -> bool:
        return self.obs is not None and self.obs.stop_requested

    def finish(self, error: BaseException | None = None) -> RuntimeReport:
        assert self.obs is not None and self._hooks is not None, "finish() before start()"
        self._hooks.__exit__(None, None, None)
        err = (
            None
            if error is None
            else {
                "step": self.obs.steps,
                "type": type(error).__name__,
                "message": str(error),
                "traceback": "",
            }
        )
        o = self.options
        args = type(
            "Args",
            (),
            {
                "warmup_steps": o.warmup_steps,
                "max_seconds": o.max_seconds,
                "dtype": o.dtype,
                "gpu": o.gpu,
                "peak_tflops": o.peak_tflops,
            },
        )
        self.report = observed_report(
            self.obs,
            err,
            args,
            self.thresholds,
            self.t_start,
            target=f"{self.framework} training loop",
            mode=self.framework,
            pipeline_note=f"checkpoint/inference/eval are the {self.framework}'s own; not run",
        )
        if o.report_json is not None:
            with open(o.report_json, "w", encoding="utf-8") as fh:
                cli.print_json(self.report, fh)
        if o.print_report:
            print(render(self.report), file=sys.stderr)
        return self.report
