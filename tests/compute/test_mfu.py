"""MFU/HFU arithmetic, checked against published figures."""

from __future__ import annotations

import pytest

from toolkit.compute.flops import training_flops, training_flops_from_counts
from toolkit.compute.mfu import (
    mfu_from_step,
    tokens_per_sec_from_step,
    utilization,
    utilization_from_step,
)
from toolkit.compute.model_config import load_preset
from toolkit.errors import InputError

# ----------------------------------------------------------------------------- PaLM


def test_palm_540b_mfu_reproduces_paper():
    """PaLM (Chowdhery et al. 2022), section 4.1 and appendix B.

    PaLM 540B: N = 540.35B, L = 118, H = 48, Q = 256 (head size), T = 2048; 238.3K tokens/s
    on 6144 TPU v4 chips at 275 TFLOP/s peak. The paper: "The MFU of PaLM 540B is 45.7%
    without self-attention or 46.2% with it."
    """
    f = training_flops_from_counts(540.35e9, 118, 48, 256, 2048)
    u = utilization(238.3e3, f.model_per_token, peak_flops_per_gpu=275e12, num_gpus=6144)
    assert round(100 * u.mfu, 1) == 46.2
    no_attention = utilization(238.3e3, f.dense_per_token, 275e12, 6144)
    assert round(100 * no_attention.mfu, 1) == 45.7
    assert f.model_per_token == pytest.approx(3.28e12, rel=2e-3)


def test_megatron_turing_mfu_without_attention_matches_palm_table():
    """PaLM section 4.1: MT-NLG 530B, 65.43K tokens/s on 2240 A100 (312 TFLOP/s) -> 29.7%
    without self-attention (the paper truncates 29.77 to 29.7)."""
    u = utilization(65.43e3, 6 * 530e9, 312e12, 2240)
    assert 0.297 <= u.mfu < 0.298


# ----------------------------------------------------------------------------- nanoGPT


def nanogpt_estimate_mfu(n_params, n_layer, n_head, n_embd, block_size, fwdbwd_per_iter, dt):
    """Line-for-line copy of the arithmetic in karpathy/nanoGPT ``GPT.estimate_mfu``."""
    N = n_params
    L, H, Q, T = n_layer, n_head, n_embd // n_head, block_size
    flops_per_token = 6 * N + 12 * L * H * Q * T
    flops_per_fwdbwd = flops_per_token * T
    flops_per_iter = flops_per_fwdbwd * fwdbwd_per_iter
    flops_achieved = flops_per_iter * (1.0 / dt)  # per second
    flops_promised = 312e12  # A100 GPU bfloat16 peak flops is 312 TFLOPS
    return flops_achieved / flops_promised


def _nanogpt_num_params() -> int:
    """nanoGPT ``get_num_params(non_embedding=True)``: all parameters minus wpe."""
    torch = pytest.importorskip("torch")
    from toolkit.demo.model import GPT, GPTConfig

    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768))
    return sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()


def test_nanogpt_estimate_mfu_for_gpt2_124m():
    n_nano = _nanogpt_num_params()
    assert n_nano == 123_653_376  # nanoGPT prints "number of parameters: 123.65M"
    # nanoGPT train.py calls estimate_mfu(batch_size * gradient_accumulation_steps, dt) per
    # process; GPT-2 124M defaults: batch 12, 40 accumulation steps split over 8 GPUs = 5 per
    # GPU, so 60 forward/backward passes per GPU per iteration. Take dt = 0.5 s.
    fwdbwd_per_iter, dt, T = 60, 0.5, 1024
    expected = nanogpt_estimate_mfu(n_nano, 12, 12, 768, T, fwdbwd_per_iter, dt)
    # By hand: (6 x 123,653,376 + 12 x 12 x 12 x 64 x 1024) = 855,166,464 FLOPs/token;
    # x 1024 x 60 / 0.5 s = 1.05083e14 FLOP/s; / 312e12 = 0.336804.
    assert expected == pytest.approx(0.336804, abs=1e-6)

    # Same convention through our API (tokens/s of one GPU, A100 bf16 peak 312 TFLOP/s).
    f = training_flops_from_counts(n_nano, 12, 12, 64, T)
    ours = utilization_from_step(dt, fwdbwd_per_iter * T, f.model_per_token, 312e12)
    assert ours.mfu == pytest.approx(expected, rel=1e-12)

    # Our own N (weight matrices only, lm_head counted; nanoGPT adds biases and norms but
    # no lm_head beyond the tied wte: 121,344 more parameters) agrees with nanoGPT to 0.09%.
    analytic = training_flops(load_preset("gpt2"), T)
    ours_analytic = utilization_from_step(dt, fwdbwd_per_iter * T, analytic.model_per_token, 312e12)
    assert ours_analytic.mfu == pytest.approx(expected, rel=1e-3)
    assert ours_analytic.mfu != expected


# ----------------------------------------------------------------------------- API


def test_arithmetic_is_spelled_out():
    u = utilization(8000.0, 1e9, 100e12, num_gpus=4)
    assert u.achieved_model_flops_per_gpu == 2000.0 * 1e9
    assert u.mfu == pytest.approx(0.02)
    text = "\n".join(u.arithmetic)
    assert "8,000 / 4 GPUs = 2,000" in text
    assert "MFU = 2 / 100 TFLOP/s peak = 2.00%" in text


def test_step_time_and_tokens_per_sec_agree():
    f = training_flops(load_preset("llama-3-8b"), 8192)
    a = utilization(4.0e6 / 2.0, f.model_per_token, 989e12, 128)
    b = utilization_from_step(2.0, 4.0e6, f.model_per_token, 989e12, 128)
    assert a.mfu == pytest.approx(b.mfu)
    assert tokens_per_sec_from_step(2.0, 4.0e6) == 2.0e6
    # mfu_from_step (FLOPs per step over all GPUs) agrees.
    assert mfu_from_step(4.0e6 * f.model_per_token, 2.0, 989e12, 128) == pytest.approx(a.mfu)


def test_more_gpus_at_same_throughput_lowers_mfu():
    one = utilization(1e4, 1e9, 1e14, num_gpus=1)
    eight = utilization(1e4, 1e9, 1e14, num_gpus=8)
    assert eight.mfu == pytest.approx(one.mfu / 8)


@pytest.mark.parametrize("recompute", ["selective", "full"])
def test_hfu_exceeds_mfu_with_recompute(recompute):
    f = training_flops(load_preset("gpt2"), 1024, recompute=recompute)
    u = utilization(1e6, f.model_per_token, 312e12, 8, f.hardware_per_token)
    assert u.hfu > u.mfu
    base = training_flops(load_preset("gpt2"), 1024)
    assert u.mfu == pytest.approx(utilization(1e6, base.model_per_token, 312e12, 8).mfu)


def test_hfu_equals_mfu_without_recompute():
    f = training_flops(load_preset("gpt2"), 1024, recompute="none")
    u = utilization(1e6, f.model_per_token, 312e12, 8, f.hardware_per_token)
    assert u.hfu == u.mfu
    assert utilization(1e6, f.model_per_token, 312e12, 8).hfu == u.mfu


def test_full_recompute_hfu_is_four_thirds_of_mfu_for_dense_term():
    f = training_flops_from_counts(1e9, 1, 1, 1, 1, recompute="full")
    u = utilization(1e3, f.model_per_token, 1e14, 1, f.hardware_per_token)
    assert u.hfu / u.mfu == pytest.approx(8 / 6, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"tokens_per_sec": 0.0}, "tokens_per_sec"),
        ({"tokens_per_sec": -5.0}, "tokens_per_sec"),
        ({"model_flops_per_token": 0.0}, "model_flops_per_token"),
        ({"peak_flops_per_gpu": -1.0}, "peak_flops_per_gpu"),
        ({"num_gpus": 0}, "num_gpus"),
        ({"hardware_flops_per_token": 0.0}, "hardware_flops_per_token"),
        ({"tokens_per_sec": float("nan")}, "tokens_per_sec"),
    ],
)
def test_non_positive_inputs_name_the_argument(kwargs, name):
    args = {"tokens_per_sec": 1e4, "model_flops_per_token": 1e9, "peak_flops_per_gpu": 1e14}
    args.update(kwargs)
    with pytest.raises(InputError, match=name):
        utilization(**args)


def test_non_positive_step_inputs_name_the_argument():
    with pytest.raises(InputError, match="step_time_s"):
        utilization_from_step(0.0, 1e6, 1e9, 1e14)
    with pytest.raises(InputError, match="tokens_per_step"):
        utilization_from_step(1.0, -1.0, 1e9, 1e14)
