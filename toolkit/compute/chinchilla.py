"""Compute-optimal model size and data (Hoffmann et al. 2022, "Chinchilla").

Rule of thumb used: ``D = 20 N`` tokens per parameter at the optimum, with ``C = 6 N D``
(:func:`toolkit.compute.flops.dense_training_flops`). Given one of C (FLOPs), N (parameters)
or D (tokens) the other two follow:

- from C: ``N = sqrt(C / (6 x 20))``, ``D = 20 N``
- from N: ``D = 20 N``, ``C = 6 N D``
- from D: ``N = D / 20``, ``C = 6 N D``

Chinchilla itself: 70B parameters, 1.4T tokens (20 tokens/param). The paper's fitted exponents
give slightly different ratios at other scales; 20 is the commonly used approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from toolkit.compute.flops import dense_training_flops
from toolkit.errors import InputError

TOKENS_PER_PARAM = 20.0


@dataclass(frozen=True)
class ChinchillaPoint:
    """A compute-optimal point: C FLOPs, N parameters, D tokens, and the formula used."""

    given: str  # "compute", "params" or "tokens"
    compute_flops: float
    params: float
    tokens: float
    tokens_per_param: float
    formula: str


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite positive number, got {value!r}")
    if value <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    return float(value)


def chinchilla(
    compute_flops: float | None = None,
    params: float | None = None,
    tokens: float | None = None,
    tokens_per_param: float = TOKENS_PER_PARAM,
) -> ChinchillaPoint:
    """The compute-optimal point from exactly one of ``compute_flops``, ``params``, ``tokens``."""
    given = [
        k
        for k, v in (("compute", compute_flops), ("params", params), ("tokens", tokens))
        if v is not None
    ]
    if len(given) != 1:
        raise InputError(
            f"give exactly one of --compute, --params, --tokens (got {len(given)}: {', '.join(given) or 'none'})"
        )
    r = _positive("--tokens-per-param", tokens_per_param)
    if compute_flops is not None:
        c = _positive("--compute", compute_flops)
        n = math.sqrt(c / (6 * r))
        d = r * n
        formula = (
            f"N = sqrt(C / (6 x {r:g})) = sqrt({c:.4g} / {6 * r:g}) = {n:.4g} params; "
            f"D = {r:g} N = {d:.4g} tokens"
        )
    elif params is not None:
        n = _positive("--params", params)
        d = r * n
        c = dense_training_flops(n, d)
        formula = f"D = {r:g} N = {r:g} x {n:.4g} = {d:.4g} tokens; C = 6 N D = {c:.4g} FLOPs"
    else:
        d = _positive("--tokens", tokens)
        n = d / r
        c = dense_training_flops(n, d)
        formula = f"N = D / {r:g} = {d:.4g} / {r:g} = {n:.4g} params; C = 6 N D = {c:.4g} FLOPs"
    return ChinchillaPoint(
        given=given[0], compute_flops=c, params=n, tokens=d, tokens_per_param=r, formula=formula
    )
