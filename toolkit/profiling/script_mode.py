"""``--script`` mode: observe an unmodified training script through torch's global hooks.

The script runs in this process (``runpy``, ``__name__ == "__main__"``, its own ``sys.argv``).
``torch.optim.optimizer.register_optimizer_step_pre_hook`` reads gradients just before each
``optimizer.step()``; the post hook timestamps the step's end. Step time is the interval between
consecutive step ends of the first optimizer that steps (a whole iteration: data, forward,
backward, step, the script's own logging), minus the runner's gradient statistics. Losses are
read from ``Tensor.backward`` on scalar tensors (a GradScaler-scaled loss is seen scaled).
After ``--steps`` steps or ``--max-seconds`` the script is stopped with an exception derived
from ``BaseException``, so its ``finally`` blocks run. The script's stdout goes to stderr, so
stdout carries only the report.
"""

from __future__ import annotations

import contextlib
import gc
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toolkit import cli
from toolkit.errors import InputError
from toolkit.profiling import gradients, loss_trend, performance
from toolkit.profiling.checks import Check, verdict
from toolkit.profiling.runtime import TrainResult, summarize_times
from toolkit.profiling.thresholds import Thresholds


class StopScript(BaseException):
    """Raised from the optimizer post-hook to end the observed script."""


def _param_names(params: list[torch.Tensor]) -> list[str]:
    """Names for the optimizer's parameters from the live module that owns most of them."""
    ids = {id(p) for p in params}
    best: dict[int, str] = {}
    for obj in gc.get_objects():
        if issubclass(type(obj), nn.Module):  # type(): isinstance can trip lazy module proxies
            names = {id(p): n for n, p in obj.named_parameters() if id(p) in ids}
            if len(names) > len(best):
                best = names
                if len(best) == len(ids):
                    break
    return [best.get(id(p), f"param[{i}] {tuple(p.shape)}") for i, p in enumerate(params)]


class Observer:
    def __init__(self, max_steps: int, max_seconds: float, warmup_steps: int) -> None:
        self.max_steps, self.max_seconds, self.warmup_steps = max_steps, max_seconds, warmup_steps
        self.primary: int | None = None  # id of the optimizer whose steps are counted
        self.names: list[str] = []
        self.params: list[torch.Tensor] = []
        self.tracker = gradients.GradTracker()
        self.times_ms: list[float] = []
        self.losses: list[float] = []
        self.pending_losses: list[torch.Tensor] = []
        self.steps = 0
        self.last_end: float | None = None
        self.started = time.perf_counter()
        self.first_step_ms: float | None = None  # script start -> end of the first step
        self.stats_s = 0.0
        self.device: torch.device | None = None
        self.stop_reason = "script finished"
        self.other_optimizers = 0

    def _sync(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def on_backward(self, tensor: torch.Tensor) -> None:
        if tensor.numel() == 1:
            self.pending_losses.append(tensor.detach())

    def pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.primary is None:
            self.primary = id(optimizer)
            self.params = [p for g in optimizer.param_groups for p in g["params"]]
            self.names = _param_names(self.params)
            self.device = self.params[0].device if self.params else None
        if id(optimizer) != self.primary:
            self.other_optimizers += 1
            return
        t0 = time.perf_counter()
        self.steps += 1
        self.tracker.add(self.steps, gradients.sample(zip(self.names, self.params, strict=True)))
        if self.pending_losses:
            self.losses.append(torch.stack([x.float() for x in self.pending_losses]).mean().item())
            self.pending_losses.clear()
        self.stats_s += time.perf_counter() - t0

    def post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if id(optimizer) != self.primary:
            return
        self._sync()
        now = time.perf_counter()
        if self.last_end is None:
            self.first_step_ms = 1e3 * (now - self.started)
        else:
            self.times_ms.append(1e3 * (now - self.last_end - self.stats_s))
        self.last_end, self.stats_s = now, 0.0
        cli.report_progress(
            f"script step {self.steps}/{self.max_steps}", self.steps, self.max_steps
        )
        if self.tracker.first_nonfinite_step is not None:
            self.stop_reason = f"non-finite gradient at step {self.tracker.first_nonfinite_step}"
            raise StopScript
        if self.steps >= self.max_steps:
            self.stop_reason = "max steps reached"
            raise StopScript
        if len(self.times_ms) > self.warmup_steps and sum(self.times_ms) / 1e3 >= self.max_seconds:
            self.stop_reason = f"time limit {self.max_seconds:g} s reached"
            raise StopScript


def observe(script: Path, script_args: list[str], obs: Observer) -> dict[str, object] | None:
    """Run the script under the hooks; return the error that ended it, if any."""
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    handles = [
        register_optimizer_step_pre_hook(obs.pre_step),
        register_optimizer_step_post_hook(obs.post_step),
    ]
    original_backward = torch.Tensor.backward

    def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        obs.on_backward(self)
        return original_backward(self, *args, **kwargs)

    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(script), *script_args]
    sys.path.insert(0, str(script.resolve().parent))
    torch.Tensor.backward = backward  # type: ignore[method-assign]
    error = None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the report (JSON)
            runpy.run_path(str(script), run_name="__main__")
    except StopScript:
        pass
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = {
                "step": obs.steps,
                "type": "SystemExit",
                "message": f"script exited with code {exc.code}",
                "traceback": "",
            }
    except Exception as exc:
        error = {
            "step": obs.steps,
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(limit=8),
        }
    finally:
        torch.Tensor.backward = original_backward  # type: ignore[method-assign]
        for h in handles:
            h.remove()
        sys.argv, sys.path[:] = saved_argv, saved_path
    return error


def run_script(args: Any, script_args: list[str], thresholds: Thresholds, t_start: float):
    from toolkit.profiling.l0_runner import RuntimeReport, Timing

    script = Path(args.script)
    if not script.is_file():
        raise InputError(f"--script {script}: file not found")
    for flag in ("gpu", "peak_tflops", "keep_checkpoint"):
        if getattr(args, flag) is not None:
            raise InputError(
                f"--{flag.replace('_', '-')} applies to --entry mode only; --script does not measure it"
            )
    steps = args.steps or 50
    obs = Observer(steps, args.max_seconds, min(args.warmup_steps, max(steps - 2, 0)))
    error = observe(script, script_args, obs)
    times = summarize_times(obs.times_ms, obs.warmup_steps)
    tr = TrainResult(
        steps=obs.steps,
        warmup_steps=min(obs.warmup_steps, len(obs.times_ms)),
        stop_reason=obs.stop_reason if error is None else f"script raised {error['type']}",
        train_s=sum(obs.times_ms) / 1e3,
        first_step_ms=obs.first_step_ms,
        times=times,
        losses=obs.losses,
        grad=obs.tracker.summary(),
        flops_per_step=None,
        flops_note="not measured in --script mode (use --entry, or mfu_calculator with the tokens/s)",
        tokens_per_step=None,
        throughput_unit="tokens",
        error=error,
        step_times_ms=obs.times_ms,
    )
    checks: list[Check] = []
    if error is not None:
        checks.append(
            Check(
                "script",
                "fail",
                f"{error['type']} after {obs.steps} optimizer step(s): {error['message']}",
            )
        )
    if obs.steps == 0:
        checks.append(
            Check(
                "optimizer steps",
                "fail",
                "the script made no optimizer.step() call; nothing to observe",
            )
        )
    if obs.losses:
        checks.append(loss_trend.judge(obs.losses, thresholds.min_loss_drop))
    else:
        checks.append(Check("loss trend", "skip", "no scalar loss.backward() call observed"))
    checks += gradients.judge(tr.grad, thresholds.max_grad_norm)
    perf = performance.Performance(
        tokens_per_sec=None,
        unit="tokens",
        achieved_tflops=None,
        peak_tflops=None,
        peak_source="not applicable",
        dtype="unknown",
        mfu=None,
        mfu_note="not measured in --script mode: FLOPs and tokens per step unknown (use --entry)",
    )
    checks += performance.judge(perf, tr, thresholds)
    checks.append(
        Check("pipeline", "skip", "checkpoint/inference/eval need --entry with a TrainSpec")
    )
    if obs.other_optimizers:
        checks.append(
            Check(
                "optimizers",
                "warn",
                f"{obs.other_optimizers} step(s) of other optimizers not timed",
            )
        )
    wall = time.perf_counter() - t_start
    return RuntimeReport(
        verdict=verdict(checks),
        checks=checks,
        mode="script",
        target=f"{script} {' '.join(script_args)}".strip(),
        device=str(obs.device) if obs.device else "unknown",
        torch_version=torch.__version__,
        training=tr,
        performance=perf,
        pipeline=None,
        timing=Timing(wall_s=wall, train_s=tr.train_s, overhead_s=wall - tr.train_s),
        notes=["step time = interval between optimizer step ends (whole iteration)"],
    )
