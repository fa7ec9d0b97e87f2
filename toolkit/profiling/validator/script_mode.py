"""``--script`` mode: run an unmodified training script in this process and report what it did.

The script runs under ``runpy`` (as ``__main__``, with its own ``sys.argv``) with the
observer's hooks installed (see ``observer.py`` for what a step is and where gradients are read).
Its stdout goes to stderr, so stdout carries only the report. ``--steps`` and ``--max-seconds``
bound the whole run, start-up included; the report says what was observed up to the stop.
"""

from __future__ import annotations

import contextlib
import runpy
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from toolkit.errors import InputError
from toolkit.profiling.validator import distributed, gradients, loss_trend, performance, sanity
from toolkit.profiling.validator.checks import Check, verdict
from toolkit.profiling.validator.device import describe_device
from toolkit.profiling.validator.observer import Observer, StopScript, hooks
from toolkit.profiling.validator.report import RuntimeReport, Timing
from toolkit.profiling.validator.runtime import TrainResult, summarize_times
from toolkit.profiling.validator.thresholds import Thresholds

DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def observe(script: Path, script_args: list[str], obs: Observer) -> dict[str, object] | None:
    """Run the script under the hooks; return the error that ended it, if any."""
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(script), *script_args]
    sys.path.insert(0, str(script.resolve().parent))
    error = None
    try:
        with contextlib.redirect_stdout(sys.stderr), hooks(obs):  # stdout: the report only
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
        sys.argv, sys.path[:] = saved_argv, saved_path
    return error


def _grad_source(obs: Observer) -> str:
    if obs.clips:
        return "pre-clip: read as clip_grad_norm_ is called"
    if obs.mode == "backward":
        return "read right after each backward (no torch optimizer)"
    return "read at the optimizer step (after any GradScaler unscale); the script does not clip"


def _performance(obs: Observer, tr: TrainResult, args: Any) -> performance.Performance:
    dev = obs.device or torch.device("cpu")
    dtype = args.dtype or (
        DTYPE_NAMES.get(obs.autocast_dtype)
        if obs.autocast_dtype is not None
        else performance.infer_dtype(obs.root, dev)
        if obs.root is not None
        else "fp32"
    )
    peak = performance.resolve_peak(dev, dtype, args.gpu, args.peak_tflops)
    perf = performance.measure(tr, peak)
    if tr.tokens_per_step is None and tr.times is not None:
        perf.tokens_note = (
            "not measured: no training-mode forward of the model was seen"
            if obs.root is not None
            else "not measured: the trained parameters belong to no single nn.Module"
        )
    return perf


def run_script(args: Any, script_args: list[str], thresholds: Thresholds, t_start: float):
    script = Path(args.script)
    if not script.is_file():
        raise InputError(f"--script {script}: file not found")
    if args.keep_checkpoint is not None:
        raise InputError("--keep-checkpoint applies to --entry mode only; --script has no pipeline")
    steps = args.steps or 50
    obs = Observer(steps, deadline=t_start + args.max_seconds, started=t_start)
    error = observe(script, script_args, obs)
    target = f"{script} {' '.join(script_args)}".strip()
    return observed_report(obs, error, args, thresholds, t_start, target, mode="script")


def observed_report(
    obs: Observer,
    error: dict[str, object] | None,
    args: Any,
    thresholds: Thresholds,
    t_start: float,
    target: str,
    mode: str,
    pipeline_note: str = "checkpoint/inference/eval need --entry with a TrainSpec",
) -> RuntimeReport:
    """The report of an observed run (``--script``, or a framework callback: ``mode``).

    ``args`` carries ``warmup_steps``, ``max_seconds``, ``dtype``, ``gpu``, ``peak_tflops``.
    """
    warmup = min(args.warmup_steps, max(len(obs.times_ms) - 1, 0))
    tr = TrainResult(
        steps=obs.steps,
        warmup_steps=warmup,
        stop_reason=(
            (
                f"time limit {args.max_seconds:g} s reached (whole run, start-up included)"
                if obs.stop_reason == "time limit reached"
                else obs.stop_reason
            )
            if error is None
            else f"script raised {error['type']}"
        ),
        train_s=sum(obs.times_ms) / 1e3,
        first_step_ms=obs.first_step_ms,
        times=summarize_times(obs.times_ms, warmup),
        losses=obs.losses,
        grad=obs.tracker.summary(list(obs.clips.values())),
        flops_per_step=obs.flops,
        flops_note=obs.flops_note,
        tokens_per_step=obs.items_per_step_median(),
        throughput_unit=obs.unit,
        error=error,
        step_times_ms=obs.times_ms,
        grad_source=_grad_source(obs),
        steps_counted_as=(
            "backward passes (no torch optimizer stepped)"
            if obs.mode == "backward"
            else "optimizer steps"
        ),
        input_shape=list(obs.input_shape) if obs.input_shape else None,
    )
    checks: list[Check] = []
    if error is not None:
        checks.append(
            Check(
                "script", "fail", f"{error['type']} after {obs.steps} step(s): {error['message']}"
            )
        )
    if obs.steps == 0:
        checks.append(
            Check(
                "training steps",
                "fail",
                "no optimizer.step() and no loss.backward() observed before the script "
                f"{'was stopped' if error is None and obs.stop_reason != 'script finished' else 'ended'}"
                f" ({tr.stop_reason}); nothing to judge",
            )
        )
    if obs.losses:
        checks.append(loss_trend.judge(obs.losses, thresholds.min_loss_drop))
    else:
        checks.append(Check("loss trend", "skip", "no scalar loss.backward() call observed"))
    checks += gradients.judge(tr.grad, thresholds.max_grad_norm, thresholds.max_clip_fraction)
    checks += sanity.judge_observed(obs.losses, obs.loss_info)
    if obs.rank is not None:
        checks += distributed.finish(obs.rank, obs.record) or []
    perf = _performance(obs, tr, args)
    checks += performance.judge(perf, tr, thresholds)
    checks.append(Check("pipeline", "skip", pipeline_note))
    if obs.other_optimizer_steps:
        checks.append(
            Check(
                "optimizers",
                "warn",
                f"{obs.other_optimizer_steps} step(s) of other optimizers not counted",
            )
        )
    wall = time.perf_counter() - t_start
    notes = [
        f"a step is one of the script's {tr.steps_counted_as}; its time is the interval "
        "between step ends (a whole iteration: data, forward, backward, update, logging)"
    ]
    notes += obs.notes
    if obs.rank is not None:
        notes.append(
            f"rank {obs.rank.rank} of {obs.rank.world_size}: this report is rank 0's; the DDP "
            "checks compare every rank's records; --max-seconds is checked at step ends only"
        )
    return RuntimeReport(
        verdict=verdict(checks),
        checks=checks,
        mode=mode,
        target=target,
        device=describe_device(obs.device) if obs.device else "not observed (no step completed)",
        torch_version=torch.__version__,
        training=tr,
        performance=perf,
        pipeline=None,
        timing=Timing(
            wall_s=wall,
            train_s=tr.train_s,
            overhead_s=wall - tr.train_s,
            setup_s=obs.first_step_ms / 1e3 if obs.first_step_ms is not None else None,
        ),
        notes=notes,
    )
