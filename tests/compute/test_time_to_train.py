"""Training time: 6 N D / (GPUs x peak x MFU), reusing flops.py and mfu.py."""

from __future__ import annotations

import pytest

from toolkit.compute.flops import dense_training_flops, training_flops
from toolkit.compute.mfu import mfu_from_step, training_time_s
from toolkit.compute.model_config import count_params, load_preset
from toolkit.compute.time_to_train import train_time
from toolkit.errors import InputError


def test_6nd_over_gpus_peak_mfu():
    t = train_time(1.4e12, 312e12, num_gpus=1024, mfu=0.5, params=70e9)
    assert t.total_flops == 6 * 70e9 * 1.4e12
    assert t.seconds == pytest.approx(5.88e23 / (1024 * 312e12 * 0.5))
    assert t.gpu_hours == pytest.approx(t.seconds * 1024 / 3600)
    assert any("6*N*D" in line for line in t.arithmetic)


def test_time_is_the_inverse_of_mfu():
    seconds = training_time_s(1e18, 1e15, 4, 0.25)
    assert mfu_from_step(1e18, seconds, 1e15, 4) == pytest.approx(0.25)


def test_moe_uses_active_params_and_seq_len_adds_attention():
    shape = load_preset("mixtral-8x7b")
    n_active = count_params(shape).matmul_active
    t = train_time(1e12, 989e12, 8, 0.4, shape=shape)
    assert t.params == n_active < 0.3 * count_params(shape).total
    assert t.total_flops == dense_training_flops(n_active, 1e12)
    ts = train_time(1e12, 989e12, 8, 0.4, shape=shape, seq_len=4096)
    assert ts.flops_per_token == training_flops(shape, 4096).model_per_token
    assert ts.seconds > t.seconds


def test_bad_input():
    with pytest.raises(InputError, match="exactly one"):
        train_time(1e9, 1e15, 1, 0.4)
    with pytest.raises(InputError, match="mfu"):
        train_time(1e9, 1e15, 1, 1.5, params=1e6)
    with pytest.raises(InputError, match="tokens"):
        train_time(-1, 1e15, 1, 0.4, params=1e6)
    with pytest.raises(InputError, match="--seq-len"):
        train_time(1e9, 1e15, 1, 0.4, params=1e6, seq_len=128)
