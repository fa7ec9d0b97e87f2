"""Pipeline check: save checkpoint -> reload into a fresh model -> identical outputs ->
inference on a sample -> evaluation metric.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toolkit.profiling.spec import Batch, TrainSpec
from toolkit.profiling.validator.checks import Check


@dataclass
class PipelineResult:
    checkpoint_path: str | None = None
    checkpoint_bytes: int | None = None
    save_ms: float | None = None
    load_ms: float | None = None
    fresh_model: str | None = None  # how the fresh model was built
    max_abs_diff: float | None = None  # between original and reloaded outputs
    inference_sample: str | None = None
    eval_metrics: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)


def default_forward(model: nn.Module, batch: Batch) -> Any:
    if isinstance(batch, torch.Tensor):
        return model(batch)
    if isinstance(batch, list | tuple):
        return model(batch[0])
    if isinstance(batch, Mapping):
        return model(**batch)
    raise TypeError(
        f"cannot call the model on a batch of type {type(batch).__name__}; give forward_fn"
    )


def first_tensor(out: Any) -> torch.Tensor:
    """The main output tensor: the tensor itself, ``.logits``, or the first tensor inside."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    values = (
        out.values() if isinstance(out, Mapping) else out if isinstance(out, list | tuple) else []
    )
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
    raise TypeError(f"model output of type {type(out).__name__} holds no tensor; give forward_fn")


def _scrambled_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose every parameter and buffer is overwritten, so a load that misses
    any tensor shows up as NaN (float) or -1 (integer) in the outputs."""
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        for t in list(fresh.parameters()) + list(fresh.buffers()):
            t.fill_(float("nan") if t.is_floating_point() or t.is_complex() else -1)
    return fresh


def _describe(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _fail(result: PipelineResult, name: str, what: str, exc: BaseException) -> PipelineResult:
    result.checks.append(Check(name, "fail", f"{what} raised {type(exc).__name__}: {exc}"))
    return result


def check_pipeline(
    spec: TrainSpec, next_batch: Callable[[], Batch], checkpoint_path: Path
) -> PipelineResult:
    """Run the pipeline check; every failure becomes a ``fail`` line, never an exception."""
    model, res = spec.model, PipelineResult(checkpoint_path=str(checkpoint_path))
    forward = spec.forward_fn or default_forward
    was_training = model.training
    try:
        t0 = time.perf_counter()
        torch.save(
            {"model": model.state_dict(), "optimizer": spec.optimizer.state_dict()}, checkpoint_path
        )
        res.save_ms = 1e3 * (time.perf_counter() - t0)
        res.checkpoint_bytes = checkpoint_path.stat().st_size
    except Exception as exc:
        return _fail(res, "checkpoint save", "torch.save", exc)

    try:
        if spec.make_model is not None:
            fresh, res.fresh_model = spec.make_model(), "make_model()"
        else:
            fresh, res.fresh_model = (
                _scrambled_copy(model),
                "copy of the model with every tensor overwritten",
            )
        t0 = time.perf_counter()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        fresh.load_state_dict(state["model"], strict=True)
        res.load_ms = 1e3 * (time.perf_counter() - t0)
    except Exception as exc:
        return _fail(res, "checkpoint reload", "loading the checkpoint into a fresh model", exc)

    try:
        batch = next_batch()
        model.eval()
        fresh.eval()
        with torch.no_grad():
            a = first_tensor(forward(model, batch))
            a2 = first_tensor(forward(model, batch))
            b = first_tensor(forward(fresh, batch))
    except Exception as exc:
        model.train(was_training)
        return _fail(res, "reloaded outputs", "the forward pass in eval mode", exc)
    finally:
        model.train(was_training)
    if not torch.equal(a, a2):
        res.checks.append(
            Check(
                "eval determinism",
                "warn",
                "two eval-mode forward passes on the same batch differ "
                f"(max abs diff {(a - a2).abs().max().item():.3g}): dropout active in eval, or nondeterministic kernels",
            )
        )
    diff = (a.float() - b.float()).abs().max().item() if a.shape == b.shape else math.inf
    res.max_abs_diff = diff
    tol = 1e-6 + 1e-5 * a.float().abs().max().item()
    if torch.equal(a, b):
        res.checks.append(
            Check("checkpoint round trip", "pass", "reloaded model gives identical outputs")
        )
    elif diff <= tol:
        res.checks.append(
            Check(
                "checkpoint round trip",
                "pass",
                f"reloaded outputs match within {diff:.3g} (tolerance {tol:.3g})",
            )
        )
    else:
        res.checks.append(
            Check(
                "checkpoint round trip",
                "fail",
                f"reloaded model's outputs differ: max abs diff {diff:.3g} > {tol:.3g} "
                "(a buffer not in state_dict, a different architecture, or state changed on load)",
            )
        )

    opt = spec.optimizer
    try:
        accepted = inspect.signature(type(opt)).parameters
        kwargs = {k: v for k, v in opt.defaults.items() if k in accepted}
        new_opt = type(opt)(fresh.parameters(), **kwargs)
    except Exception as exc:
        res.checks.append(
            Check(
                "optimizer state reload",
                "skip",
                f"cannot rebuild {type(opt).__name__} from its defaults: {exc}",
            )
        )
    else:
        try:
            new_opt.load_state_dict(state["optimizer"])
            n_state = len(new_opt.state_dict()["state"])
            res.checks.append(
                Check(
                    "optimizer state reload",
                    "pass",
                    f"{type(opt).__name__} state for {n_state} tensors reloaded",
                )
            )
        except Exception as exc:
            _fail(res, "optimizer state reload", "optimizer.load_state_dict", exc)

    fresh.eval()
    if spec.infer_fn is None:
        res.checks.append(Check("inference", "skip", "spec has no infer_fn"))
    else:
        try:
            with torch.no_grad():
                res.inference_sample = _describe(spec.infer_fn(fresh))
            res.checks.append(
                Check("inference", "pass", f"reloaded model produced: {res.inference_sample!r}")
            )
        except Exception as exc:
            _fail(res, "inference", "infer_fn(reloaded model)", exc)

    if spec.eval_fn is None:
        res.checks.append(Check("evaluation", "skip", "spec has no eval_fn"))
    else:
        try:
            with torch.no_grad():
                metrics = spec.eval_fn(fresh)
        except Exception as exc:
            return _fail(res, "evaluation", "eval_fn(reloaded model)", exc)
        if not isinstance(metrics, Mapping) or not metrics:
            res.checks.append(
                Check(
                    "evaluation",
                    "fail",
                    f"eval_fn returned {type(metrics).__name__}; expected a non-empty dict of metric: number",
                )
            )
            return res
        bad = {
            k: v
            for k, v in metrics.items()
            if not isinstance(v, int | float) or not math.isfinite(v)
        }
        res.eval_metrics = {str(k): float(v) for k, v in metrics.items() if k not in bad}
        if bad:
            res.checks.append(
                Check("evaluation", "fail", f"non-finite or non-numeric metric(s): {bad}")
            )
        else:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in res.eval_metrics.items())
            res.checks.append(Check("evaluation", "pass", shown))
    return res
