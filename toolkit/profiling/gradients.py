"""Gradient health: global and per-parameter L2 norms, NaN/Inf, exploding and vanishing.

Shared by ``--entry`` mode (called between ``backward()`` and the optimizer step) and
``--script`` mode (called from a global optimizer step pre-hook).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from toolkit.profiling.checks import Check

ZERO_GRAD_NORM = (
    0.0  # a parameter whose gradient norm is exactly this on every step is frozen in effect
)


@dataclass
class GradSample:
    """Gradients of one step. Norms are L2 over all elements; unitless."""

    global_norm: float
    norms: dict[str, float]  # parameter name -> L2 norm of its gradient
    missing: list[str]  # requires_grad but .grad is None


def sample(named_params: Iterable[tuple[str, torch.Tensor]]) -> GradSample:
    """Read the current ``.grad`` of every parameter that requires grad (one device sync)."""
    names, grads, missing = [], [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        if p.grad is None:
            missing.append(name)
        else:
            names.append(name)
            grads.append(p.grad.detach())
    if not grads:
        return GradSample(global_norm=float("nan"), norms={}, missing=missing)
    per = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
    total = torch.linalg.vector_norm(per)
    values = torch.cat([per, total.unsqueeze(0)]).tolist()
    return GradSample(
        global_norm=values[-1], norms=dict(zip(names, values[:-1], strict=True)), missing=missing
    )


@dataclass
class GradHealth:
    """Summary over all observed steps."""

    steps: int
    global_norm_first: float | None
    global_norm_last: float | None
    global_norm_max: float | None
    global_norm_median: float | None
    first_nonfinite_step: int | None
    nonfinite_params: list[str]
    never_received_grad: list[str]
    always_zero_grad: list[str]
    last_step_norms: dict[str, float] = field(default_factory=dict)


class GradTracker:
    """Accumulates :class:`GradSample` s step by step; tiny memory (floats per parameter)."""

    def __init__(self) -> None:
        self.global_norms: list[float] = []
        self.first_nonfinite_step: int | None = None
        self.nonfinite_params: list[str] = []
        self.ever_received: set[str] = set()
        self.ever_nonzero: set[str] = set()
        self.all_names: list[str] = []
        self.last: GradSample | None = None

    def add(self, step: int, s: GradSample) -> bool:
        """Record step ``step``; return False if any gradient was NaN/Inf."""
        if not self.all_names:
            self.all_names = list(s.norms) + list(s.missing)
        self.global_norms.append(s.global_norm)
        self.ever_received.update(s.norms)
        self.ever_nonzero.update(n for n, v in s.norms.items() if v != ZERO_GRAD_NORM)
        self.last = s
        bad = [n for n, v in s.norms.items() if not math.isfinite(v)]
        if bad and self.first_nonfinite_step is None:
            self.first_nonfinite_step = step
            self.nonfinite_params = bad
        return not bad

    def summary(self) -> GradHealth:
        finite = [g for g in self.global_norms if math.isfinite(g)]
        return GradHealth(
            steps=len(self.global_norms),
            global_norm_first=self.global_norms[0] if self.global_norms else None,
            global_norm_last=self.global_norms[-1] if self.global_norms else None,
            global_norm_max=max(finite) if finite else None,
            global_norm_median=statistics.median(finite) if finite else None,
            first_nonfinite_step=self.first_nonfinite_step,
            nonfinite_params=self.nonfinite_params,
            never_received_grad=[n for n in self.all_names if n not in self.ever_received],
            always_zero_grad=sorted(self.ever_received - self.ever_nonzero),
            last_step_norms=dict(self.last.norms) if self.last else {},
        )


def judge(h: GradHealth, max_grad_norm: float) -> list[Check]:
    """Turn a :class:`GradHealth` into verdict lines."""
    if h.steps == 0:
        return [Check("gradients", "skip", "no step completed: gradients not observed")]
    checks = []
    if h.first_nonfinite_step is not None:
        shown = ", ".join(h.nonfinite_params[:3]) + (" ..." if len(h.nonfinite_params) > 3 else "")
        checks.append(
            Check(
                "gradients finite",
                "fail",
                f"NaN/Inf gradient at step {h.first_nonfinite_step} in {shown}",
            )
        )
    else:
        checks.append(
            Check("gradients finite", "pass", f"all gradients finite over {h.steps} steps")
        )
    if h.global_norm_max is not None:
        if h.first_nonfinite_step is not None:
            checks.append(
                Check(
                    "gradient norm",
                    "warn",
                    f"max finite global norm {h.global_norm_max:.3g} before the first non-finite "
                    f"gradient at step {h.first_nonfinite_step}",
                )
            )
        elif h.global_norm_max > max_grad_norm:
            checks.append(
                Check(
                    "gradient norm",
                    "fail",
                    f"exploding: max global norm {h.global_norm_max:.3g} > {max_grad_norm:g}",
                )
            )
        else:
            checks.append(
                Check(
                    "gradient norm",
                    "pass",
                    f"global norm {h.global_norm_first:.3g} -> {h.global_norm_last:.3g} "
                    f"(max {h.global_norm_max:.3g} <= {max_grad_norm:g})",
                )
            )
    if h.never_received_grad:
        checks.append(
            Check(
                "every parameter gets a gradient",
                "warn",
                f"{len(h.never_received_grad)} parameter(s) require grad but never received one "
                f"(unused in forward, or detached): {', '.join(h.never_received_grad[:5])}",
            )
        )
    if h.always_zero_grad:
        checks.append(
            Check(
                "vanishing gradients",
                "warn",
                f"{len(h.always_zero_grad)} parameter(s) had an all-zero gradient on every step: "
                f"{', '.join(h.always_zero_grad[:5])}",
            )
        )
    return checks
