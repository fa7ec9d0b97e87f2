"""KV cache size, aware of grouped-query (GQA) and multi-query (MQA) attention.

Per token: ``2 (K and V) x layers x kv_heads x head_dim x bytes per element``. kv_heads is
``num_key_value_heads`` (GQA: fewer than query heads; MQA: 1; MHA: equal to query heads).
Total: ``bytes_per_token x batch x context`` (context = prompt + generated tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.compute.model_config import ModelShape
from toolkit.errors import InputError

#: Bytes per cached element by dtype name.
KV_DTYPE_BYTES: dict[str, float] = {
    "fp32": 4,
    "bf16": 2,
    "fp16": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
}


@dataclass(frozen=True)
class KvCache:
    """KV cache size. ``bytes_per_token`` for one sequence position; ``total_bytes`` for all."""

    num_layers: int
    num_kv_heads: int
    num_heads: int
    head_dim: int
    dtype: str
    bytes_per_element: float
    bytes_per_token: int
    batch: int
    context_tokens: int
    total_bytes: int
    formula: str


def kv_bytes_per_element(dtype: str) -> float:
    """Bytes of one cached element; unknown dtypes raise :class:`InputError` naming ``--kv-dtype``."""
    key = dtype.strip().lower()
    if key not in KV_DTYPE_BYTES:
        raise InputError(f"--kv-dtype must be one of {', '.join(KV_DTYPE_BYTES)}, got {dtype!r}")
    return KV_DTYPE_BYTES[key]


def kv_cache(
    shape: ModelShape, batch: int = 1, context_tokens: int = 1, dtype: str = "bf16"
) -> KvCache:
    """KV cache of ``batch`` sequences of ``context_tokens`` tokens each, in ``dtype``."""
    for flag, value in (("--batch", batch), ("--context", context_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{flag} must be a positive integer, got {value!r}")
    e = kv_bytes_per_element(dtype)
    L, kvh, d = shape.num_layers, shape.num_kv_heads, shape.head_dim
    per_token = round(2 * L * kvh * d * e)
    total = per_token * batch * context_tokens
    kind = "MHA" if kvh == shape.num_heads else ("MQA" if kvh == 1 else "GQA")
    formula = (
        f"2 x layers x kv_heads x head_dim x bytes = 2*{L}*{kvh}*{d}*{e:g} = {per_token:,} B/token "
        f"({kind}: {kvh} KV of {shape.num_heads} query heads); "
        f"x batch x context = {per_token:,}*{batch}*{context_tokens} = {total:,} B"
    )
    return KvCache(
        num_layers=L,
        num_kv_heads=kvh,
        num_heads=shape.num_heads,
        head_dim=d,
        dtype=dtype.strip().lower(),
        bytes_per_element=e,
        bytes_per_token=per_token,
        batch=batch,
        context_tokens=context_tokens,
        total_bytes=total,
        formula=formula,
    )
