"""The checks an experienced engineer runs first: initial loss against ln(classes), labels in
range, and (entry mode) overfitting one batch.

A classification loss (``F.cross_entropy`` / ``F.nll_loss``, also behind ``nn.CrossEntropyLoss``
and ``nn.NLLLoss``) is watched on its first training call: the number of classes (the class
dimension of the input), the target range, and the loss value itself. An untrained classifier
predicts near-uniformly, so its first loss is close to ln(classes); far above means a bad
initialization or logits scale, far below means the labels leak into the inputs or the loss is
not the one intended.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from toolkit.profiling.validator.checks import Check

INITIAL_LOSS_BAND = (0.75, 1.5)  # first loss / ln(classes) outside this is a finding
OVERFIT_TARGET = 0.1  # overfitting one batch must bring the loss below this x its first value


@dataclass
class LossInfo:
    """The first training call of a classification loss. ``value``: its output (nats, mean)."""

    fn: str  # "cross_entropy" or "nll_loss"
    classes: int
    value: float | None
    target_min: int | None
    target_max: int | None
    ignore_index: int
    label_smoothing: float = 0.0


def _inspect(fn: str, input: torch.Tensor, target: torch.Tensor, kwargs: dict) -> LossInfo | None:
    if input.dim() < 1 or target.is_floating_point():  # probabilities as targets: no range
        return None
    classes = input.shape[1] if input.dim() >= 2 else input.shape[0]
    ignore = int(kwargs.get("ignore_index", -100))
    valid = target[target != ignore]
    return LossInfo(
        fn=fn,
        classes=int(classes),
        value=None,
        target_min=int(valid.min()) if valid.numel() else None,
        target_max=int(valid.max()) if valid.numel() else None,
        ignore_index=ignore,
        label_smoothing=float(kwargs.get("label_smoothing", 0.0) or 0.0),
    )


@contextlib.contextmanager
def watch_classification_loss(record: Callable[[LossInfo], None]) -> Iterator[None]:
    """Patch F.cross_entropy and F.nll_loss; ``record`` gets the first grad-enabled call's info."""
    done = False
    saved = []

    def wrap(name: str, original: Callable) -> Callable:
        def loss(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal done
            info = None
            if not done and torch.is_grad_enabled() and isinstance(input, torch.Tensor):
                with contextlib.suppress(Exception):  # the user's call must behave as before
                    info = _inspect(name, input, target, kwargs)
            out = original(input, target, *args, **kwargs)
            if info is not None:
                done = True
                if out.numel() == 1 and kwargs.get("reduction", "mean") == "mean":
                    info.value = float(out.detach())
                record(info)
            return out

        return loss

    for name in ("cross_entropy", "nll_loss"):
        original = getattr(F, name)
        saved.append((name, original))
        setattr(F, name, wrap(name, original))
    try:
        yield
    finally:
        for name, original in saved:
            setattr(F, name, original)


def initial_loss_check(info: LossInfo | None, first_loss: float | None) -> Check | None:
    if info is None or info.classes < 2:
        return None
    expected = math.log(info.classes)
    value, what = (
        (info.value, f"first {info.fn}") if info.value is not None else (first_loss, "first loss")
    )
    if value is None:
        return None
    ratio = value / expected
    lo, hi = INITIAL_LOSS_BAND
    text = f"{what} {value:.4g} vs ln({info.classes} classes) = {expected:.4g} (ratio {ratio:.2f})"
    if lo <= ratio <= hi:
        return Check("initial loss", "pass", text)
    why = (
        "higher than a uniform guess: initialization or output scale too large"
        if ratio > hi
        else "lower than any untrained model should reach: labels leaking into inputs, or a "
        "loss that is not mean cross-entropy over these classes"
    )
    return Check("initial loss", "warn", f"{text}: {why}")


def label_range_check(info: LossInfo | None) -> Check | None:
    if info is None or info.target_min is None:
        return None
    lo, hi = info.target_min, info.target_max
    text = f"{info.fn} targets in [{lo}, {hi}] for {info.classes} classes (ignore_index {info.ignore_index})"
    if lo < 0 or hi >= info.classes:
        return Check("label range", "fail", f"{text}: out of range [0, {info.classes - 1}]")
    return Check("label range", "pass", text)


def judge_observed(losses: list[float], info: LossInfo | None) -> list[Check]:
    checks = [
        initial_loss_check(info, losses[0] if losses else None),
        label_range_check(info),
    ]
    return [c for c in checks if c is not None]


def overfit_one_batch(
    spec: Any, next_batch: Callable[[], Any], steps: int, untrained: Any = None
) -> Check:
    """Train ``untrained`` (a copy of the model taken before training; else a copy of the model
    now), with a fresh optimizer of the same class and defaults, on one batch for ``steps``
    steps; a model and loss that can learn drive that loss near zero."""
    try:
        model = untrained if untrained is not None else copy.deepcopy(spec.model)
        opt_cls = type(spec.optimizer)
        accepted = inspect.signature(opt_cls).parameters
        opt = opt_cls(
            model.parameters(),
            **{k: v for k, v in spec.optimizer.defaults.items() if k in accepted},
        )
        batch = next_batch()
        model.train()
        losses = []
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = spec.loss_fn(model, batch)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    except Exception as exc:
        return Check("overfit one batch", "skip", f"could not run: {type(exc).__name__}: {exc}")
    first, best = losses[0], min(losses)
    text = (
        f"{steps} steps of {opt_cls.__name__} on one batch: loss {first:.4g} -> {losses[-1]:.4g} "
        f"(best {best:.4g}, {best / first:.1%} of the first)"
        if first > 0
        else f"loss {first:.4g} -> {losses[-1]:.4g}"
    )
    if first > 0 and best <= OVERFIT_TARGET * first:
        return Check("overfit one batch", "pass", text)
    return Check(
        "overfit one batch",
        "fail",
        f"{text}: not below {OVERFIT_TARGET:.0%} of the first; the model cannot fit even one "
        "batch (a broken loss, detached outputs, frozen parameters, or too few steps/too low an LR)",
    )
