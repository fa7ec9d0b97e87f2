"""Memory estimator: model states (ZeRO paper), sharding, LoRA/QLoRA, fit rule, bad input."""

from __future__ import annotations

import json
import math

import pytest

from toolkit.compute.lora import (
    linear_layers,
    lora_params,
    matrix_shapes,
    nf4_bytes_per_param,
    quantizable_params,
)
from toolkit.compute.memory import HEADROOM, Setup, estimate_memory
from toolkit.compute.model_config import count_params, load_config, load_preset
from toolkit.errors import InputError

# Llama-2-7B config.json (meta-llama/Llama-2-7b-hf), the classic "7B" of the QLoRA paper era.
LLAMA2_7B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
}


@pytest.fixture
def llama2_7b(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA2_7B))
    return load_config(path)


def states(est):
    b = est.bytes
    return b["weights"] + b["gradients"] + b["optimizer_states"]


# ----------------------------------------------------------------------------- known cases


def test_llama3_8b_has_8_03b_params():
    est = estimate_memory(load_preset("llama-3-8b"), Setup())
    assert est.params == 8_030_261_248
    assert est.params == pytest.approx(8.03e9, rel=1e-3)
    assert est.trainable_params == est.params


def test_mixed_precision_adamw_is_16_bytes_per_param_2_2_12():
    shape = load_preset("llama-3-8b")
    est = estimate_memory(shape, Setup(precision="bf16-mixed", optimizer="adamw"))
    n = est.params
    assert est.bytes["weights"] == 2 * n
    assert est.bytes["gradients"] == 2 * n
    assert est.bytes["optimizer_states"] == 12 * n  # fp32 master + momentum + variance
    assert states(est) == 16 * n


@pytest.mark.parametrize(
    ("stage", "weights", "grads", "optim"),
    [(0, 2, 2, 12), (1, 2, 2, 12 / 8), (2, 2, 2 / 8, 12 / 8), (3, 2 / 8, 2 / 8, 12 / 8)],
)
def test_zero_stages_shard_optimizer_then_gradients_then_weights(stage, weights, grads, optim):
    shape = load_preset("llama-3-8b")
    gpus = 8 if stage else 1
    est = estimate_memory(shape, Setup(zero_stage=stage, num_gpus=gpus))
    n = est.params
    assert est.bytes["weights"] == math.ceil(weights * n)
    assert est.bytes["gradients"] == math.ceil(grads * n)
    assert est.bytes["optimizer_states"] == math.ceil(optim * n)


def test_zero_paper_7_5b_on_64_gpus():
    # ZeRO paper figure 1: Psi = 7.5B, Nd = 64: 120 GB baseline, 31.4 GB P_os, 16.6 GB P_os+g,
    # 1.9 GB P_os+g+p (model states only). Check with a raw count of 7.5B params.
    psi, nd = 7.5e9, 64
    assert (2 + 2 + 12) * psi / 1e9 == pytest.approx(120)
    assert (2 + 2 + 12 / nd) * psi / 1e9 == pytest.approx(31.4, abs=0.05)
    assert (2 + (2 + 12) / nd) * psi / 1e9 == pytest.approx(16.6, abs=0.05)
    assert 16 * psi / nd / 1e9 == pytest.approx(1.9, abs=0.05)


def test_fsdp_full_equals_zero3_and_hybrid_shards_within_the_node():
    shape = load_preset("qwen2.5-7b")
    z3 = estimate_memory(shape, Setup(zero_stage=3, num_gpus=16))
    full = estimate_memory(shape, Setup(fsdp="full", num_gpus=16))
    hybrid = estimate_memory(shape, Setup(fsdp="hybrid", num_gpus=16, gpus_per_node=8))
    z3_node = estimate_memory(shape, Setup(zero_stage=3, num_gpus=8))
    assert states(full) == states(z3)
    assert states(hybrid) == states(z3_node)
    assert "gather_buffers" in full.bytes


@pytest.mark.parametrize(
    ("precision", "optimizer", "per_param"),
    [
        ("fp32", "adamw", 4 + 4 + 8),
        ("bf16", "adamw", 2 + 2 + 4),  # pure bf16: states in bf16
        ("bf16-mixed", "sgd", 2 + 2 + 4 + 4),
        ("fp16-mixed", "adam", 16),
        ("bf16-mixed", "adam8bit", 2 + 2 + 4 + 2 * (1 + 4 / 256)),
    ],
)
def test_bytes_per_param_by_precision_and_optimizer(precision, optimizer, per_param):
    shape = load_preset("gpt2")
    est = estimate_memory(shape, Setup(precision=precision, optimizer=optimizer))
    assert states(est) == pytest.approx(per_param * est.params, abs=2)


def test_adafactor_factored_state_matches_the_torch_model_shapes():
    torch = pytest.importorskip("torch")
    from toolkit.demo.model import GPT, GPTConfig

    shape = load_preset("gpt2")
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768))
    factored = sum(
        (p.shape[0] + p.shape[1]) if p.dim() == 2 else p.numel() for p in model.parameters()
    )
    mats, vectors = matrix_shapes(shape)
    assert sum((r + c) * n for r, c, n in mats) + vectors == factored
    est = estimate_memory(shape, Setup(precision="fp32", optimizer="adafactor"))
    assert est.bytes["optimizer_states"] == 4 * factored
    assert est.bytes["optimizer_states"] < 0.02 * est.params  # vs 8 B/param for Adam


@pytest.mark.parametrize("name", ["llama-3-8b", "mixtral-8x7b", "gpt2"])
def test_linear_layers_cover_every_weight_matrix(name):
    shape = load_preset(name)
    p = count_params(shape)
    mats, vectors = matrix_shapes(shape)
    assert sum(r * c * n for r, c, n in mats) + vectors == p.total
    assert 0 <= vectors < 0.001 * p.total  # only biases and norms are vectors
    blocks = sum(layer.params for layer in linear_layers(shape) if layer.in_blocks)
    assert blocks == quantizable_params(shape)
    if name != "gpt2":  # no biases: attention + MLP + router are all matrices
        assert blocks == p.attention + p.mlp + p.router


def test_lora_counts_match_peft(llama2_7b):
    # PEFT print_trainable_parameters: Llama-2-7B, r=8, q_proj+v_proj -> 4,194,304
    assert lora_params(llama2_7b, 8).params == 4_194_304
    # Llama-3-8B, r=16, q_proj+v_proj (GQA: v_proj is 4096 -> 1024) -> 6,815,744
    assert lora_params(load_preset("llama-3-8b"), 16, ("q_proj", "v_proj")).params == 6_815_744
    # gpt2 default target c_attn (768 -> 2304), r=8
    assert lora_params(load_preset("gpt2"), 8).params == 12 * 8 * (768 + 2304)


def test_lora_trains_only_adapters():
    shape = load_preset("llama-3-8b")
    est = estimate_memory(shape, Setup(method="lora", lora_rank=16))
    n, t = est.params, 6_815_744
    assert est.trainable_params == t
    assert est.bytes["weights"] == 2 * (n + t)
    assert est.bytes["gradients"] == 2 * t
    assert est.bytes["optimizer_states"] == 12 * t


def test_qlora_7b_is_about_half_a_byte_per_param(llama2_7b):
    est = estimate_memory(
        llama2_7b, Setup(method="qlora", lora_rank=64, lora_targets=("all-linear",))
    )
    q = quantizable_params(llama2_7b)
    assert est.params == 6_738_415_616  # Llama-2-7B: 6.74B
    assert q == 6_476_005_376  # linear layers of the 32 blocks
    # QLoRA paper: 4 bits + 8/64 + 32/(64*256) = 4.127 bits per parameter
    assert nf4_bytes_per_param() == pytest.approx(4.127 / 8, abs=1e-4)
    assert nf4_bytes_per_param() == 0.5 + 1 / 64 + 4 / (64 * 256)
    assert nf4_bytes_per_param(double_quant=False) == 0.5 + 4 / 64
    adapters = est.trainable_params
    assert adapters == 64 * 32 * (4 * (4096 + 4096) + 2 * (4096 + 11008) + (11008 + 4096))
    expected = q * nf4_bytes_per_param() + (est.params - q) * 2 + adapters * 2
    assert est.bytes["weights"] == math.ceil(expected)
    base_per_param = (est.bytes["weights"] - adapters * 2) / est.params
    assert 0.5 < base_per_param < 0.6  # embeddings and lm_head stay 16-bit
    assert any("NF4" in a and "0.127" in a for a in est.assumptions)


def test_inference_has_kv_cache_and_no_training_state():
    shape = load_preset("llama-3-8b")
    est = estimate_memory(shape, Setup(mode="inference", micro_batch=4, seq_len=8192))
    assert est.bytes["kv_cache"] == 131_072 * 4 * 8192
    assert "gradients" not in est.bytes and "optimizer_states" not in est.bytes
    assert est.trainable_params == 0
    q = estimate_memory(shape, Setup(mode="inference", method="qlora"))
    assert q.bytes["weights"] < 0.4 * est.bytes["weights"]  # 16-bit embeddings + lm_head remain


def test_total_is_sum_and_overhead_is_stated():
    est = estimate_memory(load_preset("gpt2"), Setup(overhead_bytes=123))
    parts = {k: v for k, v in est.bytes.items() if k != "total_per_gpu"}
    assert est.bytes["total_per_gpu"] == sum(parts.values()) == est.total_per_gpu_bytes
    assert est.bytes["framework_overhead"] == 123
    assert any("overhead" in a and "assumption" in a for a in est.assumptions)
    assert all(c.formula for c in est.components)


def test_fit_rule_is_085_of_gpu_memory():
    shape = load_preset("gpt2")
    total = estimate_memory(shape, Setup()).total_per_gpu_bytes
    exact = math.ceil(total / HEADROOM)
    assert estimate_memory(shape, Setup(), "x", exact).fits is True
    assert estimate_memory(shape, Setup(), "x", exact - 2).fits is False
    assert estimate_memory(shape, Setup()).fits is None


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        (Setup(zero_stage=3, num_gpus=1), "--zero-stage 3"),
        (Setup(fsdp="full", num_gpus=1), "--fsdp full"),
        (Setup(fsdp="full", zero_stage=2, num_gpus=8), "--fsdp full with --zero-stage 2"),
        (Setup(fsdp="hybrid", num_gpus=12, gpus_per_node=8), "--gpus-per-node"),
        (Setup(lora_rank=8), "--lora-rank needs --method lora"),
        (Setup(lora_targets=("q_proj",)), "--lora-targets needs"),
        (Setup(method="lora", lora_targets=("nope",)), "--lora-targets: no llama module"),
        (Setup(mode="inference", zero_stage=1, num_gpus=2), "training only"),
        (Setup(mode="inference", method="lora"), "--method lora"),
        (Setup(micro_batch=0), "--micro-batch"),
        (Setup(seq_len=-5), "--seq-len"),
        (Setup(optimizer="lion"), "--optimizer"),
        (Setup(overhead_bytes=-1), "--overhead-gib"),
    ],
)
def test_bad_settings_name_the_flag(setup, needle):
    with pytest.raises(InputError, match=None) as err:
        estimate_memory(load_preset("llama-3-8b"), setup)
    assert needle in str(err.value)
