from __future__ import annotations

import numpy as np
import pytest

from toolkit.errors import InputError
from toolkit.logs import compare, read_log, synth
from toolkit.logs.compare import ema
from toolkit.logs.series import build_run


def test_ema_matches_loop():
    x = np.random.default_rng(0).random(1000)
    ref, prev = [], x[0]
    for v in x:
        prev = 0.9 * prev + 0.1 * v
        ref.append(prev)
    np.testing.assert_allclose(ema(x), ref, rtol=1e-12)


def test_same_seed_no_alerts_and_roles_pair_different_names(tmp_path):
    cols = synth.healthy_run(steps=2000, seed=0)
    run = read_log(synth.write_jsonl(tmp_path / "run.jsonl", cols))
    base = read_log(synth.write_csv(tmp_path / "metrics.csv", cols, lightning=True))
    result = compare(run, base, tolerance=0.05)
    pairs = {m.metric: m.baseline_metric for m in result.metrics}
    assert pairs["loss"] == "train_loss" and pairs["learning_rate"] == "lr-AdamW"
    assert result.alerts == []


def test_loss_regression_alerts_at_its_step(tmp_path):
    base_cols = synth.healthy_run(steps=3000, seed=0)
    run_cols = synth.healthy_run(steps=3000, seed=0)
    s, v = run_cols["loss"]
    v[s >= 2000] *= 1.3
    result = compare(
        read_log(synth.write_jsonl(tmp_path / "a.jsonl", run_cols)),
        read_log(synth.write_jsonl(tmp_path / "b.jsonl", base_cols)),
        tolerance={"train_loss": 0.1, "default": 0.5},
    )
    (alert,) = result.alerts
    assert alert.role == "train_loss" and 2000 <= alert.first_alert_step <= 2010
    assert alert.max_rel_dev == pytest.approx(0.3, abs=0.01)


def test_interpolates_on_shared_range(tmp_path):
    s1 = np.arange(0, 1000, 10)
    s2 = np.arange(5, 500, 7)
    run = build_run(tmp_path, "t", {"loss": (s1, 1.0 + s1 * 1e-3)}, [])
    base = build_run(tmp_path, "t", {"loss": (s2, 1.0 + s2 * 1e-3)}, [])
    (m,) = compare(run, base, 0.01).metrics
    assert (m.step_start, m.step_end) == (5, 495)
    assert abs(m.max_rel_dev) < 0.01 and not m.alert


def test_nothing_shared_is_input_error(tmp_path):
    a = build_run(tmp_path, "t", {"loss": (np.arange(5), np.ones(5))}, [])
    b = build_run(tmp_path, "t", {"accuracy": (np.arange(5), np.ones(5))}, [])
    with pytest.raises(InputError, match="share no metric"):
        compare(a, b)
