"""Config parsing and parameter counts against published numbers."""

from __future__ import annotations

import json

import pytest

from toolkit.compute.model_config import (
    PRESET_DIR,
    count_params,
    load_config,
    load_preset,
    preset_names,
    shape_from_dict,
)
from toolkit.errors import InputError

# Published totals (model cards / papers), in parameters.
PUBLISHED_TOTAL = {
    "gpt2": 124e6,  # "the smallest version of GPT-2, with 124M parameters"
    "llama-3-8b": 8.03e9,  # Meta-Llama-3-8B model card / Hub: 8.03B params
    "qwen2.5-7b": 7.61e9,  # Qwen2.5-7B model card: 7.61B (7.62B in some listings)
    "mixtral-8x7b": 46.7e9,  # Mistral AI: 46.7B total parameters
}


def test_shipped_presets_are_the_four_expected():
    assert preset_names() == ["gpt2", "llama-3-8b", "mixtral-8x7b", "qwen2.5-7b"]


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTAL))
def test_total_params_match_published(name):
    total = count_params(load_preset(name)).total
    assert total == pytest.approx(PUBLISHED_TOTAL[name], rel=5e-3)


def test_gpt2_param_count_equals_the_demo_model_built_from_the_same_config():
    torch = pytest.importorskip("torch")
    from toolkit.demo.model import GPT, GPTConfig

    shape = load_preset("gpt2")
    with torch.device("meta"):
        model = GPT(
            GPTConfig(
                vocab_size=shape.vocab_size,
                block_size=shape.max_position_embeddings,
                n_layer=shape.num_layers,
                n_head=shape.num_heads,
                n_embd=shape.hidden_size,
            )
        )
    assert count_params(shape).total == sum(p.numel() for p in model.parameters())


def test_qwen_non_embedding_matches_model_card():
    # Qwen2.5-7B card: "Number of Parameters (Non-Embedding): 6.53B"; embeddings are untied.
    assert count_params(load_preset("qwen2.5-7b")).non_embedding == pytest.approx(6.53e9, rel=5e-3)


def test_mixtral_counts_only_active_experts():
    shape = load_preset("mixtral-8x7b")
    p = count_params(shape)
    assert (shape.num_experts, shape.experts_per_token) == (8, 2)
    assert p.active == pytest.approx(12.9e9, rel=5e-3)  # published 12.9B active
    # Each of the 6 inactive experts per layer is one 3-matrix SwiGLU MLP.
    one_expert = 3 * shape.hidden_size * shape.intermediate_size
    assert p.total - p.active == shape.num_layers * 6 * one_expert
    assert p.router == shape.num_layers * shape.hidden_size * 8
    # N for 6N: attention + 2 experts + router + lm_head, nowhere near the 46.7B total.
    assert p.matmul_active < 0.3 * p.total


def test_dense_models_have_active_equal_total():
    for name in ("gpt2", "llama-3-8b", "qwen2.5-7b"):
        p = count_params(load_preset(name))
        assert p.active == p.total
        assert p.router == 0


def test_embeddings_are_reported_separately():
    gpt2 = count_params(load_preset("gpt2"))
    assert gpt2.embedding == 50257 * 768
    assert gpt2.position_embedding == 1024 * 768
    assert gpt2.lm_head == 0  # tied
    llama = count_params(load_preset("llama-3-8b"))
    assert llama.lm_head == llama.embedding == 128256 * 4096  # untied
    assert llama.non_embedding == llama.total - 2 * 128256 * 4096


def test_matmul_params_exclude_embedding_lookup_but_include_lm_head():
    shape = load_preset("gpt2")
    p = count_params(shape)
    per_layer = 4 * 768 * 768 + 2 * 768 * 3072  # q,k,v,o + up,down; no biases or norms
    assert p.matmul_active == 12 * per_layer + 50257 * 768


def test_preset_fields():
    llama = load_preset("llama-3-8b")
    assert (llama.mlp, llama.num_kv_heads, llama.head_dim) == ("swiglu", 8, 128)
    qwen = load_preset("qwen2.5-7b")
    assert qwen.qkv_bias and not qwen.out_bias
    gpt2 = load_preset("GPT2")  # case-insensitive
    assert (gpt2.mlp, gpt2.intermediate_size, gpt2.tie_word_embeddings) == ("gelu", 3072, True)


def test_gpt_neox_and_mistral_parse():
    neox = shape_from_dict(
        {
            "model_type": "gpt_neox",
            "hidden_size": 512,
            "num_hidden_layers": 6,
            "num_attention_heads": 8,
            "intermediate_size": 2048,
            "vocab_size": 50304,
            "max_position_embeddings": 2048,
        }
    )
    assert (neox.mlp, neox.norm, neox.tie_word_embeddings) == ("gelu", "layernorm", False)
    p = count_params(neox)
    layer = (4 * 512 * 512 + 4 * 512) + (2 * 512 * 2048 + 2048 + 512) + 4 * 512
    assert p.total == 6 * layer + 2 * 512 + 2 * 50304 * 512
    mistral = shape_from_dict(
        {
            "model_type": "mistral",
            "hidden_size": 4096,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "vocab_size": 32000,
            "max_position_embeddings": 32768,
        }
    )
    assert count_params(mistral).total == pytest.approx(7.24e9, rel=5e-3)  # Mistral-7B: 7.24B


def test_explicit_head_dim_is_used():
    shape = shape_from_dict(
        {
            "model_type": "llama",
            "hidden_size": 64,
            "head_dim": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "vocab_size": 10,
            "max_position_embeddings": 16,
        }
    )
    assert shape.head_dim == 32 and shape.q_dim == 128


# ----------------------------------------------------------------------------- errors


def _write(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    return path


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match="nowhere.json not found"):
        load_config(tmp_path / "nowhere.json")


def test_directory_with_config_json_is_accepted(tmp_path):
    _write(tmp_path, (PRESET_DIR / "gpt2.json").read_text())
    assert load_config(tmp_path).hidden_size == 768


def test_invalid_json_names_file_and_line(tmp_path):
    path = _write(tmp_path, '{\n  "model_type": "llama",\n  "hidden_size": ,\n}\n')
    with pytest.raises(InputError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


def test_missing_field_is_named(tmp_path):
    path = _write(tmp_path, json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    with pytest.raises(InputError, match="missing field 'hidden_size'.*positive integer"):
        load_config(path)


def test_invalid_field_is_named(tmp_path):
    cfg = json.loads((PRESET_DIR / "llama-3-8b.json").read_text())
    cfg["num_hidden_layers"] = "32"
    with pytest.raises(InputError, match="'num_hidden_layers' must be a positive integer"):
        load_config(_write(tmp_path, json.dumps(cfg)))


def test_unsupported_model_type_lists_supported(tmp_path):
    with pytest.raises(InputError, match="unsupported model_type 'bert'.*llama.*gpt2"):
        load_config(_write(tmp_path, json.dumps({"model_type": "bert"})))


def test_missing_model_type(tmp_path):
    with pytest.raises(InputError, match="missing field 'model_type'"):
        load_config(_write(tmp_path, json.dumps({"hidden_size": 8})))


def test_unknown_preset_lists_known():
    with pytest.raises(InputError, match="unknown preset 'gpt5'.*gpt2.*llama-3-8b"):
        load_preset("gpt5")


def test_inconsistent_heads_rejected():
    with pytest.raises(InputError, match="not a multiple of num_key_value_heads"):
        shape_from_dict(
            {
                "model_type": "llama",
                "hidden_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 8,
                "num_key_value_heads": 3,
                "intermediate_size": 128,
                "vocab_size": 10,
                "max_position_embeddings": 16,
            }
        )
