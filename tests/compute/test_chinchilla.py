"""Chinchilla compute-optimal point: D = 20 N, C = 6 N D."""

from __future__ import annotations

import pytest

from toolkit.compute.chinchilla import chinchilla
from toolkit.errors import InputError


def test_chinchilla_70b_is_1_4t_tokens():
    pt = chinchilla(params=70e9)
    assert pt.tokens == pytest.approx(1.4e12)
    assert pt.compute_flops == pytest.approx(5.88e23)
    assert "D = 20 N" in pt.formula


def test_1_4t_tokens_is_70b_and_compute_round_trips():
    assert chinchilla(tokens=1.4e12).params == pytest.approx(70e9)
    pt = chinchilla(compute_flops=5.88e23)
    assert pt.params == pytest.approx(70e9)
    assert pt.tokens == pytest.approx(1.4e12)
    assert "sqrt" in pt.formula


def test_exactly_one_positive_input():
    with pytest.raises(InputError, match="exactly one"):
        chinchilla()
    with pytest.raises(InputError, match="exactly one"):
        chinchilla(params=1e9, tokens=2e10)
    with pytest.raises(InputError, match="--params"):
        chinchilla(params=-1)
    with pytest.raises(InputError, match="--tokens-per-param"):
        chinchilla(params=1e9, tokens_per_param=0)
