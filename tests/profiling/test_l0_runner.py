"""Behaviour of the runtime validator: each fault the runner exists to catch, caught."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import InputError
from toolkit.profiling.validator import runner as l0_runner

ROOT = Path(__file__).resolve().parents[2]
FIX = "tests.profiling.fixtures.entries"
SCRIPTS = Path(__file__).parent / "fixtures"


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = l0_runner.main(["--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def entry(capsys, name: str, *args: str) -> tuple[int, dict]:
    return run_json(capsys, "--entry", f"{FIX}:{name}", "--steps", "40", *args)


def status(report: dict, check: str) -> str:
    found = [c["status"] for c in report["checks"] if c["name"] == check]
    assert found, f"no check {check!r} in {[c['name'] for c in report['checks']]}"
    return found[0]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.l0_runner", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_builtin_example_passes_with_full_report():
    proc = cli("--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout)
    assert r["verdict"] == "PASS"
    tr = r["training"]
    assert tr["flops_per_step"] > 0 and tr["times"]["median_ms"] > 0
    assert r["performance"]["tokens_per_sec"] > 0
    assert r["performance"]["mfu"] is None
    assert "no peak FLOPS for this CPU" in r["performance"]["mfu_note"]
    assert tr["losses"][-1] < tr["losses"][0]
    names = {c["name"] for c in r["checks"]}
    assert {
        "loss trend",
        "gradients finite",
        "checkpoint round trip",
        "inference",
        "evaluation",
    } <= names
    assert r["pipeline"]["eval_metrics"]["val_loss"] > 0
    assert r["timing"]["overhead_s"] >= 0


def test_table_output_has_verdict_and_reasons(capsys):
    code = l0_runner.main(["--entry", f"{FIX}:healthy", "--steps", "40"])
    out = capsys.readouterr().out
    assert code == 0
    assert "verdict: PASS" in out and "PASS  loss trend: decreasing" in out


def test_healthy_entry_passes_and_dict_spec_works(capsys):
    code, r = entry(capsys, "healthy")
    assert code == 0 and r["verdict"] == "PASS"
    code, r = entry(capsys, "healthy_as_dict")
    assert code == 0
    assert status(r, "inference") == "skip"  # the dict gave no infer_fn: said, not faked


def test_measured_flops_are_exact_for_a_linear_layer(capsys):
    from tests.profiling.fixtures.entries import BATCH, IN

    _, r = entry(capsys, "linear_only", "--peak-tflops", "1")
    assert r["training"]["flops_per_step"] == 4 * BATCH * IN
    perf, times = r["performance"], r["training"]["times"]
    expected = r["training"]["flops_per_step"] / (times["mean_ms"] / 1e3) / 1e12
    assert perf["mfu"] == pytest.approx(expected, rel=1e-9)


def test_nan_divergence_fails_with_step(capsys):
    code, r = entry(capsys, "diverging")
    assert code == 1 and r["verdict"] == "FAIL"
    assert status(r, "gradients finite") == "fail" or status(r, "loss") == "fail"
    assert status(r, "pipeline") == "skip"


def test_flat_loss_fails_trend(capsys):
    code, r = entry(capsys, "frozen_lr")
    assert code == 1 and status(r, "loss trend") == "fail"


def test_exploding_threshold_from_baseline(tmp_path, capsys):
    base = tmp_path / "baseline.yaml"
    base.write_text("max_grad_norm: 1.0e-6\nmax_step_time_ms: 1.0e-9\n")
    code, r = entry(capsys, "healthy", "--baseline", str(base))
    assert code == 1
    assert status(r, "gradient norm") == "fail" and status(r, "step time") == "fail"


def test_min_mfu_without_peak_fails_honestly(tmp_path, capsys):
    base = tmp_path / "baseline.yaml"
    base.write_text("min_mfu: 0.3\n")
    code, r = entry(capsys, "healthy", "--baseline", str(base))
    assert code == 1
    mfu = [c for c in r["checks"] if c["name"] == "MFU"][0]
    assert mfu["status"] == "fail" and "not measured" in mfu["message"]


def test_unused_parameter_warns(capsys):
    code, r = entry(capsys, "unused_parameter")
    assert code == 0 and status(r, "every parameter gets a gradient") == "warn"
    msg = [c["message"] for c in r["checks"] if c["name"] == "every parameter gets a gradient"][0]
    assert "head_never_used.weight" in msg


def test_state_missing_from_state_dict_fails_round_trip(capsys):
    code, r = entry(capsys, "unsaved_state")
    assert code == 1 and status(r, "checkpoint round trip") == "fail"


def test_scrambled_copy_round_trip_when_no_make_model(capsys):
    code, r = entry(capsys, "no_make_model")
    assert code == 0 and status(r, "checkpoint round trip") == "pass"
    assert "overwritten" in r["pipeline"]["fresh_model"]


def test_architecture_mismatch_fails_reload(capsys):
    code, r = entry(capsys, "wrong_architecture")
    assert code == 1 and status(r, "checkpoint reload") == "fail"


def test_dropout_in_eval_is_flagged(capsys):
    _, r = entry(capsys, "dropout_in_eval")
    assert status(r, "eval determinism") == "warn"


def test_broken_inference_and_nan_metric_fail(capsys):
    code, r = entry(capsys, "broken_inference")
    assert code == 1 and status(r, "inference") == "fail"
    code, r = entry(capsys, "nan_metric")
    assert code == 1 and status(r, "evaluation") == "fail"


def test_crash_in_training_step_fails_with_traceback(capsys):
    code, r = entry(capsys, "crashes_at_step_3")
    assert code == 1
    assert r["training"]["error"]["step"] == 3
    assert "shape mismatch in user loss" in r["training"]["error"]["traceback"]


def test_keep_checkpoint_writes_and_never_overwrites(tmp_path, capsys):
    ckpt = tmp_path / "ck.pt"
    code, r = entry(capsys, "healthy", "--keep-checkpoint", str(ckpt))
    assert code == 0 and ckpt.stat().st_size == r["pipeline"]["checkpoint_bytes"]
    before = ckpt.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        l0_runner.main(["--entry", f"{FIX}:healthy", "--keep-checkpoint", str(ckpt)])
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--entry", f"{FIX}:wrong_shape"], "returned list; expected"),
        (["--entry", f"{FIX}:missing_optimizer"], "without required key(s) ['optimizer']"),
        (["--entry", f"{FIX}:raises_on_build"], "dataset path /nope not found"),
        (["--entry", "no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
        (["--entry", f"{FIX}:absent"], "has no attribute 'absent'"),
        (["--entry", "just_a_module"], "expected 'module:function'"),
        (["--steps", "0"], "--steps expects a positive integer"),
        (["--peak-tflops", "-3"], "--peak-tflops expects a positive number"),
        (["--baseline", "does/not/exist.yaml"], "file not found"),
        (["--script", "nope.py"], "--script nope.py: file not found"),
        (["--", "--lr", "1"], "give --script PATH"),
    ],
)
def test_usage_errors_exit_2_with_a_named_cause(args, message):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_baseline_fields_are_named(tmp_path):
    base = tmp_path / "b.yaml"
    base.write_text("min_mfu: 40\n")
    proc = cli("--baseline", str(base))
    assert proc.returncode == 2 and "min_mfu" in proc.stderr and "fraction" in proc.stderr
    base.write_text("max_step_ms: 3\n")
    proc = cli("--baseline", str(base))
    assert proc.returncode == 2 and "unknown field(s) ['max_step_ms']" in proc.stderr


# ----------------------------------------------------------------------------- --script mode


def test_script_mode_observes_steps_loss_and_gradients(capsys):
    code, r = run_json(
        capsys, "--script", str(SCRIPTS / "script_train.py"), "--steps", "30", "--", "--lr", "0.01"
    )
    assert code == 0, r["checks"]
    assert r["mode"] == "script" and r["training"]["steps"] == 30
    assert len(r["training"]["losses"]) == 30
    assert status(r, "loss trend") == "pass"
    assert set(r["training"]["grad"]["last_step_norms"]) == {
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    }
    assert r["performance"]["mfu"] is None


def test_script_mode_catches_nan(capsys):
    code, r = run_json(capsys, "--script", str(SCRIPTS / "script_train.py"), "--", "--lr", "1e6")
    assert code == 1 and status(r, "gradients finite") == "fail"


def test_script_mode_reports_crash_and_exit_code(capsys):
    code, r = run_json(
        capsys,
        "--script",
        str(SCRIPTS / "script_train.py"),
        "--",
        "--lr",
        "0.01",
        "--crash-at",
        "4",
    )
    assert code == 1 and status(r, "script") == "fail"
    assert "boom at step 4" in r["training"]["error"]["message"]


def test_script_without_optimizer_fails(tmp_path, capsys):
    script = tmp_path / "noop.py"
    script.write_text("print('no training here')\n")
    code, r = run_json(capsys, "--script", str(script))
    assert code == 1 and status(r, "training steps") == "fail"


# ----------------------------------------------------------------------------- sanity checks


def test_overfit_one_batch_passes_healthy_and_fails_a_data_bug(capsys):
    code, r = entry(capsys, "healthy", "--overfit-steps", "40", "--layer-steps", "0")
    assert status(r, "overfit one batch") == "pass" and code == 0, r["checks"]
    code, r = entry(capsys, "inputs_zeroed", "--overfit-steps", "40", "--layer-steps", "0")
    assert status(r, "overfit one batch") == "fail" and code == 1


def test_initial_loss_against_ln_classes(capsys):
    _, r = entry(capsys, "classifier", "--layer-steps", "0")
    assert status(r, "initial loss") == "pass" and "ln(10 classes)" in str(r["checks"])
    assert status(r, "label range") == "pass"
    _, r = entry(capsys, "classifier_hot_logits", "--layer-steps", "0")
    assert status(r, "initial loss") == "warn"
