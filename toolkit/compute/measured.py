"""Measured FLOPs of real PyTorch code with :class:`torch.utils.flop_counter.FlopCounterMode`.

FlopCounterMode counts matmul-like ops (mm, addmm, bmm, convolution, SDPA kernels). Out of the
box it misses the CPU SDPA kernels (``_scaled_dot_product_flash_attention_for_cpu`` and its
backward), so attention on CPU would silently count as zero; :func:`count_flops` registers them
with the same formulas torch uses for the GPU kernels. Attention is counted as full
(non-causal) QK^T and AV, as torch does for every SDPA kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils import flop_counter as _fc

aten = torch.ops.aten


def _cpu_sdpa_forward(query_shape, key_shape, value_shape, *args: Any, **kwargs: Any) -> int:
    return _fc.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward(
    grad_out_shape, query_shape, key_shape, value_shape, *args: Any, **kwargs: Any
) -> int:
    return _fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _extra_formulas() -> dict[Any, Callable[..., int]]:
    extra: dict[Any, Callable[..., int]] = {}
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_sdpa_forward),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_sdpa_backward),
    ):
        op = getattr(aten, name, None)
        if op is not None and op not in _fc.flop_registry:
            extra[op] = formula
    return extra


def count_flops(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Run ``fn()`` once under FlopCounterMode; return ``(total FLOPs, fn's return value)``.

    FLOPs count a multiply-add as 2. Only ops torch has formulas for are counted
    (matmuls, convolutions, attention); elementwise ops are not, as in every MFU convention.
    """
    with _fc.FlopCounterMode(display=False, custom_mapping=_extra_formulas()) as counter:
        out = fn()
    return int(counter.get_total_flops()), out
