"""Analytic FLOPs per token for decoder-only transformers (a multiply-add counts as 2 FLOPs).

Training, per token (PaLM, Chowdhery et al. 2022, appendix B, generalised):

- dense term ``6 N``: every weight matrix costs 2 FLOPs per weight forward and 4 backward
  (gradient w.r.t. input and w.r.t. weight). N is :attr:`ParamCount.matmul_active`: attention
  and active MLP/expert matrices, the router, and the lm_head; not embedding lookups, position
  embeddings, biases or norms.
- attention term ``12 L H Q T``: QK^T and AV are each ``2 T Q`` FLOPs per query token per head
  forward, so ``4 L H Q T`` forward and twice that backward. H counts query heads (grouped-query
  attention shares K/V but not this work). ``causal=True`` halves it (only the lower triangle
  of the T x T score matrix is needed, as FlashAttention-style kernels compute); PaLM and torch's
  flop counter count the full square, which is the default here.

Model FLOPs (for MFU) never include activation recomputation. Hardware FLOPs (for HFU) add it:
``full`` recomputes the whole forward once more (8N instead of 6N), ``selective`` recomputes only
the attention core (Korthikanti et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.compute.model_config import ModelShape, count_params
from toolkit.errors import InputError

RECOMPUTE_MODES = ("none", "selective", "full")


@dataclass(frozen=True)
class TrainingFlops:
    """FLOPs per token of one training step (forward + backward), with the terms spelled out.

    All ``*_per_token`` values are FLOPs per token at sequence length ``seq_len`` (tokens).
    """

    matmul_params: int  # N
    num_layers: int  # L
    num_heads: int  # H (query heads)
    head_dim: int  # Q
    seq_len: int  # T, tokens
    causal: bool
    recompute: str
    dense_per_token: float  # 6N
    attention_per_token: float  # 12 L H Q T (x 0.5 when causal)
    forward_per_token: float  # 2N + attention / 3
    backward_per_token: float  # 4N + 2 attention / 3
    model_per_token: float  # forward + backward: what MFU counts
    recompute_per_token: float  # extra forward work from activation recomputation
    hardware_per_token: float  # model + recompute: what HFU counts
    formula: str

    def per_step(self, tokens_per_step: float) -> float:
        """Model FLOPs of one step that processes ``tokens_per_step`` tokens."""
        return self.model_per_token * tokens_per_step


@dataclass(frozen=True)
class InferenceFlops:
    """Forward-only FLOPs per token (prefill of a ``seq_len``-token sequence)."""

    matmul_params: int
    seq_len: int
    causal: bool
    dense_per_token: float  # 2N
    attention_per_token: float  # 4 L H Q T (x 0.5 when causal)
    total_per_token: float
    formula: str


def _check(seq_len: int, recompute: str = "none", **counts: int) -> None:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise InputError(f"seq_len must be a positive integer number of tokens, got {seq_len!r}")
    for name, value in counts.items():
        if value < 1:
            raise InputError(f"{name} must be > 0, got {value}")
    if recompute not in RECOMPUTE_MODES:
        raise InputError(
            f"recompute must be one of {', '.join(RECOMPUTE_MODES)}, got {recompute!r}"
        )


def training_flops_from_counts(
    matmul_params: int,
    num_layers: int,
    num_heads: int,
    head_dim: int,
    seq_len: int,
    causal: bool = False,
    recompute: str = "none",
) -> TrainingFlops:
    """Training FLOPs per token from raw counts: ``6N + 12 L H Q T`` (PaLM appendix B).

    ``matmul_params`` is N (parameters taking part in matmuls per token); ``seq_len`` is T in
    tokens; ``head_dim`` is Q. ``causal`` halves the attention term; ``recompute`` is ``none``,
    ``selective`` or ``full`` and only changes the hardware (HFU) count.
    """
    _check(
        seq_len,
        recompute,
        matmul_params=matmul_params,
        num_layers=num_layers,
        num_heads=num_heads,
        head_dim=head_dim,
    )
    n, L, H, Q, T = matmul_params, num_layers, num_heads, head_dim, seq_len
    attn_scale = 0.5 if causal else 1.0
    dense = 6.0 * n
    attention = 12.0 * L * H * Q * T * attn_scale
    forward = 2.0 * n + attention / 3
    backward = 4.0 * n + 2 * attention / 3
    if recompute == "full":
        extra = forward
    elif recompute == "selective":
        extra = attention / 3
    else:
        extra = 0.0
    half = " x 0.5 (causal)" if causal else ""
    formula = (
        f"6N + 12*L*H*Q*T{half} = 6*{n:,} + 12*{L}*{H}*{Q}*{T}{half}"
        f" = {dense:,.0f} + {attention:,.0f} = {dense + attention:,.0f} FLOPs/token"
    )
    if extra:
        what = "one extra forward" if recompute == "full" else "attention forward"
        formula += f"; {recompute} recompute adds {what} = {extra:,.0f} FLOPs/token (HFU only)"
    return TrainingFlops(
        matmul_params=n,
        num_layers=L,
        num_heads=H,
        head_dim=Q,
        seq_len=T,
        causal=causal,
        recompute=recompute,
        dense_per_token=dense,
        attention_per_token=attention,
        forward_per_token=forward,
        backward_per_token=backward,
        model_per_token=dense + attention,
        recompute_per_token=extra,
        hardware_per_token=dense + attention + extra,
        formula=formula,
    )


def training_flops(
    shape: ModelShape, seq_len: int, causal: bool = False, recompute: str = "none"
) -> TrainingFlops:
    """Training FLOPs per token for ``shape`` at ``seq_len`` tokens (see module docstring)."""
    return training_flops_from_counts(
        count_params(shape).matmul_active,
        shape.num_layers,
        shape.num_heads,
        shape.head_dim,
        seq_len,
        causal=causal,
        recompute=recompute,
    )


def inference_flops(shape: ModelShape, seq_len: int, causal: bool = False) -> InferenceFlops:
    """Forward-only FLOPs per token: ``2N + 4 L H Q T`` (halved attention when ``causal``)."""
    _check(seq_len)
    n = count_params(shape).matmul_active
    L, H, Q, T = shape.num_layers, shape.num_heads, shape.head_dim, seq_len
    half = " x 0.5 (causal)" if causal else ""
    dense = 2.0 * n
    attention = 4.0 * L * H * Q * T * (0.5 if causal else 1.0)
    return InferenceFlops(
        matmul_params=n,
        seq_len=T,
        causal=causal,
        dense_per_token=dense,
        attention_per_token=attention,
        total_per_token=dense + attention,
        formula=(
            f"2N + 4*L*H*Q*T{half} = 2*{n:,} + 4*{L}*{H}*{Q}*{T}{half}"
            f" = {dense + attention:,.0f} FLOPs/token"
        ),
    )


def dense_training_flops(params: float, tokens: float) -> float:
    """Training compute ``C = 6 N D`` FLOPs for N parameters (``params``) and D ``tokens``.

    The 6 is the dense term of :func:`training_flops_from_counts` (2 forward + 4 backward FLOPs
    per parameter per token); for MoE pass the active parameters. Kaplan et al. 2020 and
    Hoffmann et al. 2022 (Chinchilla) use this same approximation.
    """
    for name, value in (("params", params), ("tokens", tokens)):
        if isinstance(value, bool) or not (isinstance(value, int | float) and value > 0):
            raise InputError(f"{name} must be > 0, got {value!r}")
    return 6.0 * params * tokens
