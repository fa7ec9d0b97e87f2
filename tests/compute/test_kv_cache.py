"""KV cache bytes: 2 x layers x kv_heads x head_dim x bytes, GQA/MQA aware."""

from __future__ import annotations

import pytest

from toolkit.compute.kv_cache import kv_cache
from toolkit.compute.model_config import load_preset, shape_from_dict
from toolkit.errors import InputError


@pytest.mark.parametrize(
    ("name", "per_token"),
    [
        ("llama-3-8b", 131_072),  # 2*32*8*128*2: GQA, 8 KV heads of 32
        ("qwen2.5-7b", 57_344),  # 2*28*4*128*2
        ("mixtral-8x7b", 131_072),  # 2*32*8*128*2
        ("gpt2", 36_864),  # 2*12*12*64*2: MHA
    ],
)
def test_bf16_bytes_per_token(name, per_token):
    assert kv_cache(load_preset(name)).bytes_per_token == per_token


def test_total_is_per_token_times_batch_times_context():
    kv = kv_cache(load_preset("llama-3-8b"), batch=8, context_tokens=8192)
    assert kv.total_bytes == 131_072 * 8 * 8192 == 8 * 2**30
    assert "GQA" in kv.formula and "2*32*8*128*2" in kv.formula


def test_mqa_and_dtypes():
    mqa = shape_from_dict(
        {
            "model_type": "llama",
            "hidden_size": 2048,
            "intermediate_size": 5632,
            "num_attention_heads": 16,
            "num_key_value_heads": 1,
            "num_hidden_layers": 24,
            "max_position_embeddings": 2048,
            "vocab_size": 32000,
        }
    )
    kv = kv_cache(mqa, dtype="bf16")
    assert kv.bytes_per_token == 2 * 24 * 1 * 128 * 2 and "MQA" in kv.formula
    assert kv_cache(mqa, dtype="fp8").bytes_per_token * 2 == kv.bytes_per_token
    assert kv_cache(mqa, dtype="fp32").bytes_per_token == 2 * kv.bytes_per_token


def test_bad_input_names_the_flag():
    shape = load_preset("gpt2")
    with pytest.raises(InputError, match="--kv-dtype"):
        kv_cache(shape, dtype="fp7")
    with pytest.raises(InputError, match="--batch"):
        kv_cache(shape, batch=0)
    with pytest.raises(InputError, match="--context"):
        kv_cache(shape, context_tokens=-1)
