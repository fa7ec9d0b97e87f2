"""Activation memory of training, after Korthikanti et al. 2022, "Reducing Activation
Recomputation in Large Transformer Models" (arXiv 2205.05198), section 4 and table 2.

Symbols: s sequence length (tokens), b micro-batch (sequences), h hidden size, a attention
heads, L layers, V vocabulary. The paper's per-layer bytes (no tensor parallelism, 16-bit
activations, 1-byte dropout masks, GPT block: 4h GELU MLP, unfused attention):

- no recomputation:         ``sbh (34 + 5 a s / h)``
- selective recomputation:  ``sbh 34`` (the attention core ``QK^T``/softmax/dropout/``AV`` is
  recomputed, so its ``5 a s^2 b`` term is gone)
- full recomputation:       ``2 sbh`` (only the layer input is kept)

The 34 is, in bytes per token at 16 bits: LayerNorm inputs 4, QKV input 2, Q and K 4, V 2,
output-projection input 2, MLP input 2, GELU input 8 and output 8 (from the 4h MLP), plus two
1-byte dropout masks. The 5 is the 16-bit softmax output 2, its dropout output 2 and mask 1.
This module keeps that split so the element size ``e`` (bytes: 2 for 16-bit, 4 for fp32),
dropout (``d`` = 1 or 0), the query/KV widths ``q``/``kv`` (grouped-query attention), the MLP
width ``i`` and kind (GELU keeps ``2i`` per token, SwiGLU ``4i``: gate, up, SiLU output and
product; times ``k`` experts per token for MoE) can change. With ``e = 2``, ``d = 1``,
``q = kv = h``, ``i = 4h`` GELU it is the paper's formula exactly::

    kept unless full recompute:  sb [e (4h + 2q + 2kv + m k i) + 2 d h],  m = 2 GELU, 4 SwiGLU
    eager attention core:         a s^2 b (e + e d + d)
    flash attention core:         4 a s b (fp32 log-sum-exp; the s x s matrices are never stored)
    selective:                    no attention core
    full:                         sbh e per layer, plus one layer's no-recompute set while it is
                                  recomputed in backward

Beyond the L layers (not in the paper's per-layer table): the final norm input and the lm_head
input (``2 sbh e``) and the fp32 log-softmax kept by the cross-entropy loss (``4 s b V``).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.compute.flops import RECOMPUTE_MODES
from toolkit.compute.model_config import ModelShape
from toolkit.errors import InputError

ATTENTION_KERNELS = ("eager", "flash")


@dataclass(frozen=True)
class ActivationBytes:
    """Activation bytes kept for backward for one micro-batch on one GPU."""

    per_layer_bytes: int
    layers_bytes: int  # all L layers (full recompute: inputs + one layer's working set)
    output_layer_bytes: int  # final norm + lm_head inputs + fp32 log-softmax
    total_bytes: int
    formula: str


def layer_bytes(
    s: int,
    b: int,
    h: int,
    a: int,
    recompute: str = "none",
    element_bytes: int = 2,
    dropout: bool = True,
    attention: str = "eager",
    *,
    q_dim: int | None = None,
    kv_dim: int | None = None,
    intermediate: int | None = None,
    mlp: str = "gelu",
    experts_per_token: int = 1,
) -> int:
    """Bytes one transformer layer keeps for backward (see module docstring for the formula).

    ``s`` tokens, ``b`` sequences, ``h`` hidden, ``a`` query heads; ``q_dim``/``kv_dim`` default
    to ``h`` (multi-head), ``intermediate`` to ``4h``. With the defaults and
    ``element_bytes=2, dropout=True, attention="eager"`` this is Korthikanti's table 2:
    ``sbh(34 + 5as/h)`` (none), ``34 sbh`` (selective), ``2 sbh`` (full).
    """
    for name, value in (("seq_len", s), ("micro_batch", b), ("hidden", h), ("heads", a)):
        if value < 1:
            raise InputError(f"{name} must be a positive integer, got {value}")
    if recompute not in RECOMPUTE_MODES:
        raise InputError(
            f"--recompute must be one of {', '.join(RECOMPUTE_MODES)}, got {recompute!r}"
        )
    if attention not in ATTENTION_KERNELS:
        raise InputError(
            f"--attention must be one of {', '.join(ATTENTION_KERNELS)}, got {attention!r}"
        )
    if mlp not in ("gelu", "swiglu"):
        raise InputError(f"mlp must be gelu or swiglu, got {mlp!r}")
    e, d = element_bytes, int(dropout)
    q = h if q_dim is None else q_dim
    kv = h if kv_dim is None else kv_dim
    i = 4 * h if intermediate is None else intermediate
    m = 2 if mlp == "gelu" else 4
    if recompute == "full":
        return s * b * h * e
    base = s * b * (e * (4 * h + 2 * q + 2 * kv + m * experts_per_token * i) + 2 * d * h)
    if recompute == "selective":
        return base
    if attention == "flash":
        return base + 4 * a * s * b
    return base + a * s * s * b * (e + e * d + d)


def activation_bytes(
    shape: ModelShape,
    seq_len: int,
    micro_batch: int,
    recompute: str = "none",
    element_bytes: int = 2,
    dropout: bool = True,
    attention: str = "eager",
) -> ActivationBytes:
    """Activation bytes of one training micro-batch for ``shape`` (per GPU, no tensor parallel)."""
    s, b, h, a, L, V = (
        seq_len,
        micro_batch,
        shape.hidden_size,
        shape.num_heads,
        shape.num_layers,
        shape.vocab_size,
    )
    dims = {
        "q_dim": shape.q_dim,
        "kv_dim": shape.kv_dim,
        "intermediate": shape.intermediate_size,
        "mlp": shape.mlp,
        "experts_per_token": shape.experts_per_token,
    }
    per_layer = layer_bytes(s, b, h, a, recompute, element_bytes, dropout, attention, **dims)
    e, d = element_bytes, int(dropout)
    q, kv, i, k = shape.q_dim, shape.kv_dim, shape.intermediate_size, shape.experts_per_token
    m = 2 if shape.mlp == "gelu" else 4
    kept = f"sb[e(4h+2q+2kv+{m}ki)+2dh] = {s}*{b}*[{e}*(4*{h}+2*{q}+2*{kv}+{m}*{k}*{i})+2*{d}*{h}]"
    if attention == "flash":
        none_formula = f"{kept} + 4asb (+4*{a}*{s}*{b})"
    else:
        none_formula = f"{kept} + as^2b(e+ed+d) (+{a}*{s}^2*{b}*{e + e * d + d})"
    if recompute == "full":
        working = layer_bytes(s, b, h, a, "none", element_bytes, dropout, attention, **dims)
        layers = L * per_layer + working
        layer_formula = f"L*sbh*e + one layer [{none_formula}] = {L}*{s}*{b}*{h}*{e} + {working:,}"
    elif recompute == "selective":
        layers = L * per_layer
        layer_formula = f"L*{kept}"
    else:
        layers = L * per_layer
        layer_formula = f"L*[{none_formula}]"
    output = 2 * s * b * h * e + 4 * s * b * V
    formula = (
        f"layers ({recompute} recompute, {attention} attention, e={e} bytes, dropout={d}): "
        f"{layer_formula} = {layers:,} B; output layer 2sbh*e + 4sbV = "
        f"2*{s}*{b}*{h}*{e} + 4*{s}*{b}*{V} = {output:,} B"
    )
    return ActivationBytes(
        per_layer_bytes=per_layer,
        layers_bytes=layers,
        output_layer_bytes=output,
        total_bytes=layers + output,
        formula=formula,
    )
