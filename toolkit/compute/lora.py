"""Weight matrices of a :class:`ModelShape` by Hugging Face module name, and LoRA/QLoRA counts.

Counts are numbers of parameters (scalars); byte sizes live in :mod:`toolkit.compute.memory`.

LoRA (Hu et al. 2021) adds ``A`` (rank x in) and ``B`` (out x rank) beside each targeted linear
layer: ``rank x (in + out)`` trainable parameters per layer instance. Targets match PEFT's rule:
a module matches a target when its name equals it or ends with ``"." + target``.

QLoRA (Dettmers et al. 2023) stores the frozen linear layers of the transformer blocks in 4-bit
NF4 with one absmax constant per block of 64 weights. With double quantization that constant is
8-bit, plus one fp32 constant per 256 blocks: ``8/64 + 32/(64*256) = 0.127`` bits per parameter
(paper section 3), so ``0.5 + 0.127/8`` bytes per parameter. Embeddings, the lm_head, norms and
biases stay in the 16-bit compute dtype (bitsandbytes only replaces ``nn.Linear`` inside the
blocks; transformers keeps the lm_head unquantized).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.compute.model_config import ModelShape, count_params
from toolkit.errors import InputError

#: PEFT's default target modules per model_type (peft TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "mixtral": ("q_proj", "v_proj"),
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
}

#: Target meaning every linear layer inside the transformer blocks (PEFT's "all-linear").
ALL_LINEAR = "all-linear"

NF4_BITS_PER_PARAM = 4.0
#: Quantization constants, bits per parameter: 8-bit absmax per 64 weights + fp32 per 256 blocks.
NF4_DOUBLE_QUANT_BITS_PER_PARAM = 8 / 64 + 32 / (64 * 256)
#: Without double quantization: one fp32 absmax per 64 weights.
NF4_SINGLE_QUANT_BITS_PER_PARAM = 32 / 64


@dataclass(frozen=True)
class Linear:
    """One kind of weight matrix: ``count`` instances of an ``in_features x out_features`` matrix."""

    name: str
    in_features: int
    out_features: int
    count: int
    in_blocks: bool = True  # inside the transformer blocks (quantized by QLoRA)

    @property
    def params(self) -> int:
        return self.in_features * self.out_features * self.count


@dataclass(frozen=True)
class LoraCount:
    """LoRA adapter size for ``rank`` over ``targets``; ``params`` is the trainable count."""

    rank: int
    targets: tuple[str, ...]
    matched: tuple[str, ...]  # module names that matched
    params: int
    formula: str


def linear_layers(shape: ModelShape) -> list[Linear]:
    """Every weight matrix with its Hugging Face module name (biases, norms, embeddings excluded).

    The lm_head is listed (``in_blocks=False``) even when tied, since LoRA may target it.
    """
    h, L, i = shape.hidden_size, shape.num_layers, shape.intermediate_size
    q, kv = shape.q_dim, shape.kv_dim
    if shape.model_type == "gpt2":
        layers = [
            Linear("attn.c_attn", h, q + 2 * kv, L),
            Linear("attn.c_proj", q, h, L),
            Linear("mlp.c_fc", h, i, L),
            Linear("mlp.c_proj", i, h, L),
        ]
    elif shape.model_type == "gpt_neox":
        layers = [
            Linear("attention.query_key_value", h, q + 2 * kv, L),
            Linear("attention.dense", q, h, L),
            Linear("mlp.dense_h_to_4h", h, i, L),
            Linear("mlp.dense_4h_to_h", i, h, L),
        ]
    else:
        layers = [
            Linear("self_attn.q_proj", h, q, L),
            Linear("self_attn.k_proj", h, kv, L),
            Linear("self_attn.v_proj", h, kv, L),
            Linear("self_attn.o_proj", q, h, L),
        ]
        if shape.is_moe:
            e = L * shape.num_experts
            layers += [
                Linear("block_sparse_moe.gate", h, shape.num_experts, L),
                Linear("block_sparse_moe.experts.w1", h, i, e),
                Linear("block_sparse_moe.experts.w3", h, i, e),
                Linear("block_sparse_moe.experts.w2", i, h, e),
            ]
        else:
            layers += [
                Linear("mlp.gate_proj", h, i, L),
                Linear("mlp.up_proj", h, i, L),
                Linear("mlp.down_proj", i, h, L),
            ]
    layers.append(Linear("lm_head", h, shape.vocab_size, 1, in_blocks=False))
    return layers


def quantizable_params(shape: ModelShape) -> int:
    """Parameters QLoRA stores in 4-bit: the weight matrices inside the transformer blocks."""
    return sum(layer.params for layer in linear_layers(shape) if layer.in_blocks)


def nf4_bytes_per_param(double_quant: bool = True) -> float:
    """Bytes per 4-bit NF4 parameter including quantization constants (see module docstring)."""
    extra = NF4_DOUBLE_QUANT_BITS_PER_PARAM if double_quant else NF4_SINGLE_QUANT_BITS_PER_PARAM
    return (NF4_BITS_PER_PARAM + extra) / 8


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def lora_params(shape: ModelShape, rank: int, targets: tuple[str, ...] | None = None) -> LoraCount:
    """Trainable LoRA parameters: ``sum over matched layers of rank x (in + out) x count``.

    ``targets`` defaults to PEFT's defaults for the model type; ``("all-linear",)`` selects every
    linear layer in the blocks. Unknown targets raise :class:`InputError` naming ``--lora-targets``.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise InputError(f"--lora-rank must be a positive integer, got {rank!r}")
    targets = tuple(targets) if targets else DEFAULT_TARGETS[shape.model_type]
    layers = linear_layers(shape)
    if ALL_LINEAR in targets:
        chosen = [layer for layer in layers if layer.in_blocks]
    else:
        chosen = []
        for target in targets:
            hits = [layer for layer in layers if _matches(layer.name, target)]
            if not hits:
                names = ", ".join(sorted({layer.name.split(".")[-1] for layer in layers}))
                raise InputError(
                    f"--lora-targets: no {shape.model_type} module matches {target!r}; "
                    f"known: {names}, {ALL_LINEAR}"
                )
            chosen += [layer for layer in hits if layer not in chosen]
    params = sum(rank * (layer.in_features + layer.out_features) * layer.count for layer in chosen)
    terms = " + ".join(
        f"{layer.count}*{rank}*({layer.in_features}+{layer.out_features})" for layer in chosen
    )
    return LoraCount(
        rank=rank,
        targets=targets,
        matched=tuple(layer.name for layer in chosen),
        params=params,
        formula=f"sum count*r*(in+out) = {terms} = {params:,} params",
    )


def matrix_shapes(shape: ModelShape) -> tuple[list[tuple[int, int, int]], int]:
    """All parameters as ``(rows, cols, count)`` matrices plus the number of vector parameters.

    Matrices: linear weights, token and position embeddings (the lm_head only when untied).
    Vector parameters (biases, norm weights) are returned as one count. Used for Adafactor,
    whose factored second moment stores ``rows + cols`` values per matrix.
    """
    counts = count_params(shape)
    mats = [
        (layer.out_features, layer.in_features, layer.count)
        for layer in linear_layers(shape)
        if layer.in_blocks or not shape.tie_word_embeddings
    ]
    mats.append((shape.vocab_size, shape.hidden_size, 1))
    if shape.learned_position_embeddings:
        mats.append((shape.max_position_embeddings, shape.hidden_size, 1))
    vectors = counts.total - sum(r * c * n for r, c, n in mats)
    return mats, vectors
