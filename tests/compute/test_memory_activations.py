"""Activation memory against Korthikanti et al. 2022 (arXiv 2205.05198), table 2 and section 5."""

from __future__ import annotations

import pytest

from toolkit.compute.activations import activation_bytes, layer_bytes
from toolkit.compute.model_config import load_preset

# (name, heads a, hidden h, seq s) of the paper's GPT-3 175B and MT-NLG 530B configurations.
GPT3 = (96, 12288, 2048)
MTNLG = (128, 20480, 2048)


@pytest.mark.parametrize(("a", "h", "s"), [GPT3, MTNLG, (12, 768, 1024)])
@pytest.mark.parametrize("b", [1, 4])
def test_table2_rows_without_parallelism(a, h, s, b):
    sbh = s * b * h
    assert layer_bytes(s, b, h, a, "none") == sbh * (34 + 5 * a * s / h)
    assert layer_bytes(s, b, h, a, "selective") == 34 * sbh
    assert layer_bytes(s, b, h, a, "full") == 2 * sbh


@pytest.mark.parametrize(("dims", "share"), [(GPT3, 0.70), (MTNLG, 0.65)])
def test_attention_core_share_quoted_in_the_paper(dims, share):
    # Section 4.2: 5as/h = 80 for GPT-3 and 64 for MT-NLG, so selective recomputation removes
    # 80/114 = 70% and 64/98 = 65% of the activation memory.
    a, h, s = dims
    none, sel = layer_bytes(s, 1, h, a, "none"), layer_bytes(s, 1, h, a, "selective")
    assert 1 - sel / none == pytest.approx(share, abs=0.005)


def test_fp32_and_no_dropout_variants():
    s, b, h, a = 128, 2, 64, 4
    sbh, as2b = s * b * h, a * s * s * b
    assert layer_bytes(s, b, h, a, element_bytes=2, dropout=False) == 32 * sbh + 2 * as2b
    assert layer_bytes(s, b, h, a, element_bytes=4, dropout=False) == 64 * sbh + 4 * as2b
    assert layer_bytes(s, b, h, a, element_bytes=4, dropout=True) == 66 * sbh + 9 * as2b
    # flash attention never stores the s x s matrices, only an fp32 log-sum-exp per head and row
    assert layer_bytes(s, b, h, a, attention="flash", dropout=False) == 32 * sbh + 4 * a * s * b


def test_gqa_and_swiglu_generalise_the_paper_terms():
    shape = load_preset("llama-3-8b")  # q 4096, kv 1024, i 14336, SwiGLU
    s, b, h = 4096, 1, 4096
    act = activation_bytes(shape, s, b, recompute="selective", dropout=False)
    # 2 bytes x (norm inputs 2h, QKV and MLP inputs 2h, Q + out-proj input 2q, K + V 2kv,
    # SwiGLU gate, up, SiLU output, product 4i)
    assert act.per_layer_bytes == s * b * 2 * (4 * h + 2 * 4096 + 2 * 1024 + 4 * 14336)
    moe = load_preset("mixtral-8x7b")  # 2 experts per token: twice the MLP intermediates
    m = activation_bytes(moe, s, b, recompute="selective", dropout=False)
    assert m.per_layer_bytes == s * b * 2 * (4 * h + 2 * 4096 + 2 * 1024 + 4 * 2 * 14336)


def test_model_totals_add_layers_and_output():
    shape = load_preset("gpt2")
    s, b = 1024, 2
    act = activation_bytes(shape, s, b)
    assert act.layers_bytes == 12 * layer_bytes(s, b, 768, 12)
    assert act.output_layer_bytes == 2 * s * b * 768 * 2 + 4 * s * b * 50257
    full = activation_bytes(shape, s, b, recompute="full")
    # full recompute keeps every layer input plus one layer's set while it is recomputed
    assert full.layers_bytes == 12 * 2 * s * b * 768 + layer_bytes(s, b, 768, 12)
    assert (
        full.total_bytes < activation_bytes(shape, s, b, "selective").total_bytes < act.total_bytes
    )
    assert "4h+2q+2kv" in act.formula and f"{act.layers_bytes:,}" in act.formula


def test_bad_values_name_the_field():
    from toolkit.errors import InputError

    with pytest.raises(InputError, match="seq_len"):
        layer_bytes(0, 1, 64, 4)
    with pytest.raises(InputError, match="--recompute"):
        layer_bytes(8, 1, 64, 4, recompute="some")
    with pytest.raises(InputError, match="--attention"):
        layer_bytes(8, 1, 64, 4, attention="sdpa")
