from __future__ import annotations

import numpy as np
import pytest

from toolkit.logs import Thresholds, analyze, read_log, synth
from toolkit.logs.detectors import trailing_median_mad
from toolkit.logs.series import build_run


def _run(tmp_path, cols, writer=synth.write_jsonl, name="run.jsonl"):
    return read_log(writer(tmp_path / name, cols))


def _kinds(report, kind):
    return [f for f in report.findings if f.kind == kind]


@pytest.mark.parametrize("seed", range(6))
def test_healthy_runs_have_no_errors(tmp_path, seed):
    cols = synth.healthy_run(steps=4000 + 500 * seed, seed=seed)
    report = analyze(_run(tmp_path, cols))
    assert report.errors == []
    kinds = {f.kind for f in report.findings if f.severity == "warning"}
    assert kinds <= {"grad_norm_spike"}, [f.message for f in report.findings]


@pytest.mark.parametrize(
    "writer,name",
    [
        (synth.write_jsonl, "run.jsonl"),
        (synth.write_hf_state, "trainer_state.json"),
        (lambda p, c: synth.write_csv(p, c, lightning=True), "metrics.csv"),
        (synth.write_csv, "log.csv"),
        (synth.write_text, "train.log"),
    ],
)
def test_spike_and_nan_found_at_their_steps_in_every_format(tmp_path, writer, name):
    cols = synth.healthy_run(steps=3000, seed=3)
    synth.inject_spike(cols, 1500, factor=3.0, grad_lead=None)
    synth.inject_nan(cols, 2500)
    report = analyze(_run(tmp_path, cols, writer, name))
    spikes = _kinds(report, "loss_spike")
    assert [(f.step_start, f.severity) for f in spikes] == [(1500, "error")]
    assert spikes[0].evidence["factor_over_running_min"] > 2
    nans = _kinds(report, "nan_inf")
    assert len(nans) == 1 and nans[0].step_start == 2500 and nans[0].severity == "error"
    assert not _kinds(report, "divergence")


def test_grad_spike_before_loss_spike_is_linked(tmp_path):
    cols = synth.healthy_run(steps=3000, seed=1)
    synth.inject_spike(cols, 2000, factor=1.6, grad_lead=4)
    report = analyze(_run(tmp_path, cols))
    (loss_spike,) = _kinds(report, "loss_spike")
    assert loss_spike.step_start == 2000 and loss_spike.severity == "warning"
    assert loss_spike.evidence["grad_spike_step"] == 1996
    assert loss_spike.causes[0].cause.startswith("gradient spike")
    grad = [f for f in _kinds(report, "grad_norm_spike") if f.step_start == 1996]
    assert grad and grad[0].evidence["precedes_loss_spike_at"] == 2000


def test_megatron_factor_over_running_max_is_error(tmp_path):
    cols = synth.healthy_run(steps=3000, seed=2)
    synth.inject_spike(cols, 2200, factor=50.0, grad_lead=None)
    (spike,) = _kinds(analyze(_run(tmp_path, cols)), "loss_spike")
    assert spike.severity == "error" and spike.evidence["factor_over_running_max"] > 10


def test_plateau_found_with_its_range(tmp_path):
    cols = synth.healthy_run(steps=5000, seed=4)
    synth.inject_plateau(cols, 1500, 3000)
    plateaus = [
        f for f in _kinds(analyze(_run(tmp_path, cols)), "plateau") if f.severity == "warning"
    ]
    assert len(plateaus) == 1
    assert 1300 <= plateaus[0].step_start <= 1700 and 2700 <= plateaus[0].step_end <= 3050


def test_overfitting_from_val_minimum(tmp_path):
    cols = synth.healthy_run(steps=5000, seed=5)
    synth.inject_overfit(cols, 3000)
    report = analyze(_run(tmp_path, cols))
    (over,) = _kinds(report, "overfitting")
    assert over.severity == "warning" and 2790 <= over.step_start <= 3000 and over.step_end == 4999
    assert over.evidence["train_loss_at_end"] < over.evidence["train_loss_at_val_min"]
    assert report.errors == []


def test_divergence_is_error_near_its_start(tmp_path):
    cols = synth.healthy_run(steps=5000, seed=6)
    synth.inject_divergence(cols, 3000)
    report = analyze(_run(tmp_path, cols))
    (div,) = _kinds(report, "divergence")
    assert div.severity == "error" and 3000 <= div.step_start <= 3200


def test_throughput_drop_range(tmp_path):
    cols = synth.healthy_run(steps=3000, seed=7)
    synth.inject_throughput_drop(cols, 1200, 1260)
    (drop,) = _kinds(analyze(_run(tmp_path, cols)), "throughput_drop")
    assert (drop.step_start, drop.step_end) == (1200, 1259)


def _lr_run(tmp_path, lr):
    steps = np.arange(lr.size)
    loss = 2 + 5 * np.exp(-steps / 300)
    return build_run(tmp_path, "test", {"loss": (steps, loss), "lr": (steps, lr)}, [])


def test_lr_exhausted(tmp_path):
    n = 2000
    lr = np.where(np.arange(n) < 1000, 1e-3 * (1 - np.arange(n) / 1000), 0.0)
    (f,) = [f for f in analyze(_lr_run(tmp_path, lr)).findings if f.kind == "lr_exhausted"]
    assert f.step_start == 1000 and f.evidence["frac_of_run"] == pytest.approx(0.5, abs=0.01)


def test_no_warmup_depends_on_model_size(tmp_path):
    lr = np.full(2000, 3e-4)
    run = _lr_run(tmp_path, lr)
    (info,) = [f for f in analyze(run).findings if f.kind == "no_warmup"]
    assert info.severity == "info"  # 3e-4, size unknown
    (warn,) = [
        f for f in analyze(run, Thresholds(model_params=7e9)).findings if f.kind == "no_warmup"
    ]
    assert warn.severity == "warning"


def test_thresholds_change_results(tmp_path):
    cols = synth.healthy_run(steps=3000, seed=3)
    synth.inject_spike(cols, 1500, factor=1.3, grad_lead=None)
    run = _run(tmp_path, cols)
    assert _kinds(analyze(run), "loss_spike")
    assert not _kinds(analyze(run, Thresholds(spike_z=1e9)), "loss_spike")


def test_trailing_median_excludes_the_point_itself():
    x = np.arange(100, dtype=float)
    med, mad = trailing_median_mad(x, 10)
    assert np.isnan(med[:10]).all()
    assert med[10] == np.median(x[0:10]) and med[50] == np.median(x[40:50])
    assert mad[50] == np.median(np.abs(x[40:50] - med[50]))


@pytest.mark.parametrize("seed", [10, 11, 12])
@pytest.mark.parametrize(
    "writer,name",
    [
        (synth.write_hf_state, "trainer_state.json"),
        (lambda p, c: synth.write_csv(p, c, lightning=True), "metrics.csv"),
        (synth.write_text, "train.log"),
    ],
)
def test_healthy_runs_in_other_formats_have_no_errors(tmp_path, seed, writer, name):
    cols = synth.healthy_run(steps=4000, seed=seed)
    report = analyze(_run(tmp_path, cols, writer, name))
    assert report.errors == [], [f.message for f in report.errors]
