"""Read a Hugging Face ``config.json`` (or a shipped preset) into a :class:`ModelShape`.

Supported ``model_type`` values: llama, mistral, qwen2, mixtral (gated SwiGLU MLP with three
matrices, RMSNorm, rotary positions) and gpt2, gpt_neox (two-matrix GELU MLP, LayerNorm with
bias). Parameter counts follow the Hugging Face module layout exactly, biases and norms included,
so they reproduce the published totals (GPT-2 124M, Llama-3-8B 8.03B, Qwen2.5-7B 7.62B,
Mixtral-8x7B 46.7B total / 12.9B active).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import InputError

PRESET_DIR = Path(__file__).parent / "presets"

#: Where each shipped preset's config.json came from (Hugging Face Hub repository).
PRESET_SOURCES: dict[str, str] = {
    "gpt2": "openai-community/gpt2",
    "llama-3-8b": "meta-llama/Meta-Llama-3-8B",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1",
}

GATED = ("llama", "mistral", "qwen2", "mixtral")
PLAIN = ("gpt2", "gpt_neox")
SUPPORTED_MODEL_TYPES = GATED + PLAIN


@dataclass(frozen=True)
class ModelShape:
    """Shape of a decoder-only transformer, as far as parameter and FLOP counts need it.

    ``mlp`` is ``"gelu"`` (two matrices: up, down) or ``"swiglu"`` (three: gate, up, down).
    Dense models have ``num_experts == experts_per_token == 1``.
    """

    source: str
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    mlp: str
    num_experts: int
    experts_per_token: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    learned_position_embeddings: bool
    norm: str  # "layernorm" (weight + bias) or "rmsnorm" (weight only)
    qkv_bias: bool
    out_bias: bool
    mlp_bias: bool

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def q_dim(self) -> int:
        """Width of all query heads together: num_heads x head_dim."""
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of all key (or value) heads together: num_kv_heads x head_dim."""
        return self.num_kv_heads * self.head_dim


@dataclass(frozen=True)
class ParamCount:
    """Parameter counts (numbers of scalars, not bytes).

    ``total`` counts every parameter once (a tied lm_head is not counted twice).
    ``active`` is what one token touches: for MoE, ``experts_per_token`` of ``num_experts``
    expert MLPs plus the router. ``matmul_active`` is N in the 6N rule: the weight matrices
    a token is multiplied with (attention, active MLP, router, and the lm_head even when tied);
    embedding lookups, position embeddings, biases and norms are not matmuls and are excluded.
    """

    embedding: int
    position_embedding: int
    lm_head: int
    attention: int
    mlp: int
    mlp_active: int
    router: int
    norms: int
    total: int
    active: int
    non_embedding: int
    matmul_active: int


# ----------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    """Names of the shipped presets (file stems under ``toolkit/compute/presets``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> ModelShape:
    """Load a shipped preset by name (case-insensitive); unknown names list the known ones."""
    key = name.strip().lower()
    path = PRESET_DIR / f"{key}.json"
    if not path.is_file():
        known = ", ".join(preset_names())
        raise InputError(f"unknown preset {name!r}; known presets: {known}")
    return shape_from_dict(_read_json(path), source=f"preset {key}")


def load_config(path: str | Path) -> ModelShape:
    """Load a Hugging Face ``config.json``; a directory is taken to contain one."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise InputError(f"config file {path} not found; expected a Hugging Face config.json")
    return shape_from_dict(_read_json(path), source=str(path))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read config: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at top level, got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------- parsing


class _Fields:
    """Typed access to config fields with errors that name the file and the field."""

    def __init__(self, data: dict[str, Any], source: str, model_type: str) -> None:
        self.data, self.source, self.model_type = data, source, model_type

    def _where(self) -> str:
        return f"{self.source} (model_type {self.model_type})"

    def positive_int(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key)
        if value is None:
            if default is not None:
                return default
            raise InputError(f"{self._where()}: missing field {key!r}; expected a positive integer")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(
                f"{self._where()}: field {key!r} must be a positive integer, got {value!r}"
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InputError(f"{self._where()}: field {key!r} must be true or false, got {value!r}")
        return value

    def invalid(self, message: str) -> InputError:
        return InputError(f"{self._where()}: {message}")


def shape_from_dict(data: dict[str, Any], source: str = "config") -> ModelShape:
    """Build a :class:`ModelShape` from the contents of a Hugging Face config.json."""
    model_type = data.get("model_type")
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if model_type is None:
        raise InputError(f"{source}: missing field 'model_type'; expected one of: {supported}")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise InputError(f"{source}: unsupported model_type {model_type!r}; supported: {supported}")
    f = _Fields(data, source, model_type)
    if model_type == "gpt2":
        shape = _gpt2(f)
    elif model_type == "gpt_neox":
        shape = _gpt_neox(f)
    else:
        shape = _gated(f)
    _check(shape, f)
    return shape


def _gpt2(f: _Fields) -> ModelShape:
    hidden = f.positive_int("n_embd")
    heads = f.positive_int("n_head")
    return ModelShape(
        source=f.source,
        model_type="gpt2",
        vocab_size=f.positive_int("vocab_size"),
        hidden_size=hidden,
        num_layers=f.positive_int("n_layer"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=_head_dim(f, hidden, heads),
        intermediate_size=f.positive_int("n_inner", default=4 * hidden),
        mlp="gelu",
        num_experts=1,
        experts_per_token=1,
        tie_word_embeddings=f.boolean("tie_word_embeddings", True),
        max_position_embeddings=f.positive_int("n_positions"),
        learned_position_embeddings=True,
        norm="layernorm",
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
    )


def _gpt_neox(f: _Fields) -> ModelShape:
    hidden = f.positive_int("hidden_size")
    heads = f.positive_int("num_attention_heads")
    bias = f.boolean("attention_bias", True)
    return ModelShape(
        source=f.source,
        model_type="gpt_neox",
        vocab_size=f.positive_int("vocab_size"),
        hidden_size=hidden,
        num_layers=f.positive_int("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=_head_dim(f, hidden, heads),
        intermediate_size=f.positive_int("intermediate_size"),
        mlp="gelu",
        num_experts=1,
        experts_per_token=1,
        tie_word_embeddings=f.boolean("tie_word_embeddings", False),
        max_position_embeddings=f.positive_int("max_position_embeddings"),
        learned_position_embeddings=False,
        norm="layernorm",
        qkv_bias=bias,
        out_bias=bias,
        mlp_bias=True,
    )


def _gated(f: _Fields) -> ModelShape:
    """llama, mistral, qwen2, mixtral: RMSNorm, rotary positions, SwiGLU MLP."""
    hidden = f.positive_int("hidden_size")
    heads = f.positive_int("num_attention_heads")
    moe = f.model_type == "mixtral"
    attention_bias = f.boolean("attention_bias", False)
    return ModelShape(
        source=f.source,
        model_type=f.model_type,
        vocab_size=f.positive_int("vocab_size"),
        hidden_size=hidden,
        num_layers=f.positive_int("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=f.positive_int("num_key_value_heads", default=heads),
        head_dim=_head_dim(f, hidden, heads),
        intermediate_size=f.positive_int("intermediate_size"),
        mlp="swiglu",
        num_experts=f.positive_int("num_local_experts") if moe else 1,
        experts_per_token=f.positive_int("num_experts_per_tok") if moe else 1,
        tie_word_embeddings=f.boolean("tie_word_embeddings", False),
        max_position_embeddings=f.positive_int("max_position_embeddings"),
        learned_position_embeddings=False,
        norm="rmsnorm",
        # Qwen2 always has q/k/v biases (no o_proj bias); llama has a config switch.
        qkv_bias=True if f.model_type == "qwen2" else attention_bias,
        out_bias=False if f.model_type == "qwen2" else attention_bias,
        mlp_bias=f.boolean("mlp_bias", False) if f.model_type == "llama" else False,
    )


def _head_dim(f: _Fields, hidden: int, heads: int) -> int:
    if f.data.get("head_dim") is not None:
        return f.positive_int("head_dim")
    if hidden % heads:
        raise f.invalid(
            f"hidden size {hidden} is not divisible by the number of attention heads {heads}; "
            "expected a divisor or an explicit 'head_dim'"
        )
    return hidden // heads


def _check(shape: ModelShape, f: _Fields) -> None:
    if shape.num_heads % shape.num_kv_heads:
        raise f.invalid(
            f"num_attention_heads {shape.num_heads} is not a multiple of "
            f"num_key_value_heads {shape.num_kv_heads}"
        )
    if shape.experts_per_token > shape.num_experts:
        raise f.invalid(
            f"num_experts_per_tok {shape.experts_per_token} exceeds "
            f"num_local_experts {shape.num_experts}"
        )


# ----------------------------------------------------------------------------- parameters


def count_params(shape: ModelShape) -> ParamCount:
    """Count parameters of ``shape`` the way the Hugging Face implementation lays them out."""
    h, L = shape.hidden_size, shape.num_layers
    q, kv = shape.q_dim, shape.kv_dim

    attn_weights = h * q + 2 * h * kv + q * h  # q, k, v, o projections
    attn_biases = (q + 2 * kv if shape.qkv_bias else 0) + (h if shape.out_bias else 0)
    attention = L * (attn_weights + attn_biases)

    n_mats = 3 if shape.mlp == "swiglu" else 2
    expert_weights = n_mats * h * shape.intermediate_size
    expert_biases = (
        ((n_mats - 1) * shape.intermediate_size + h) if shape.mlp_bias else 0
    )  # up (and gate) biases of width intermediate, down bias of width hidden
    expert = expert_weights + expert_biases
    mlp = L * shape.num_experts * expert
    mlp_active = L * shape.experts_per_token * expert
    router = L * h * shape.num_experts if shape.is_moe else 0

    per_norm = 2 * h if shape.norm == "layernorm" else h
    norms = (2 * L + 1) * per_norm

    embedding = shape.vocab_size * h
    position = shape.max_position_embeddings * h if shape.learned_position_embeddings else 0
    lm_head = 0 if shape.tie_word_embeddings else shape.vocab_size * h

    total = embedding + position + lm_head + attention + mlp + router + norms
    active = total - mlp + mlp_active
    matmul_active = L * (attn_weights + shape.experts_per_token * expert_weights)
    matmul_active += router + shape.vocab_size * h  # router and lm_head (tied or not)
    return ParamCount(
        embedding=embedding,
        position_embedding=position,
        lm_head=lm_head,
        attention=attention,
        mlp=mlp,
        mlp_active=mlp_active,
        router=router,
        norms=norms,
        total=total,
        active=active,
        non_embedding=total - embedding - position - lm_head,
        matmul_active=matmul_active,
    )
