"""--script mode on equivalents of real training scripts (nanoGPT train.py with grad_clip,
pytorch/examples time_sequence_prediction with LBFGS, word_language_model with manual SGD):
what the runner reports must be what the training code computed."""

import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.demo.train import load_corpus
from toolkit.profiling.validator import runner as l0_runner

FIX = Path(__file__).parent / "fixtures"


def run(capsys, script: str, *args: str) -> tuple[int, dict]:
    runner_args, _, script_args = list(args), None, []
    if "--" in runner_args:
        i = runner_args.index("--")
        runner_args, script_args = runner_args[:i], runner_args[i + 1 :]
    code = l0_runner.main(
        [
            "--format",
            "json",
            "--skip-l0",
            "--script",
            str(FIX / script),
            *runner_args,
            "--",
            *script_args,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def check(report: dict, name: str) -> dict:
    found = [c for c in report["checks"] if c["name"] == name]
    assert found, f"no check {name!r} in {[c['name'] for c in report['checks']]}"
    return found[0]


@pytest.fixture(scope="module")
def char_data(tmp_path_factory) -> Path:
    """A shakespeare_char-format dataset (train.bin of uint16 ids, meta.pkl) from the demo corpus."""
    d = tmp_path_factory.mktemp("shakespeare_char")
    text = load_corpus()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    np.array([stoi[c] for c in text], dtype=np.uint16).tofile(d / "train.bin")
    (d / "meta.pkl").write_bytes(
        pickle.dumps({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi})
    )
    return d


def test_nanogpt_clip_reports_pre_clip_norm_and_clip_ratio(capsys, char_data):
    data = ["--data-dir", str(char_data)]
    code0, unclipped = run(
        capsys, "script_gpt_clip.py", "--steps", "6", "--", *data, "--grad-clip", "0"
    )
    code1, clipped = run(
        capsys, "script_gpt_clip.py", "--steps", "6", "--", *data, "--grad-clip", "0.05"
    )
    g0, g1 = unclipped["training"]["grad"], clipped["training"]["grad"]
    # same seed, same first batch: the first step's norm is the one the code computed before clipping
    assert g1["global_norm_first"] == pytest.approx(g0["global_norm_first"], rel=0.10)
    assert g1["global_norm_first"] > 0.05 * 5  # not the clipped value
    assert g0["clip"] is None and "gradient clipping" not in [
        c["name"] for c in unclipped["checks"]
    ]
    assert g1["clip"]["clipped"] == g1["clip"]["steps"] == 6
    assert g1["clip"]["median_norm"] == pytest.approx(g1["global_norm_median"], rel=1e-4)
    assert check(clipped, "gradient clipping")["status"] == "fail" and code1 == 1
    assert "pre-clip" in clipped["training"]["grad_source"]
    # a GradScaler that really scales (2**16): losses and norms are the unscaled ones
    _, scaled = run(
        capsys, "script_gpt_clip.py", "--steps", "6", "--", *data, "--grad-clip", "0.05", "--scaler"
    )
    assert scaled["training"]["losses"] == pytest.approx(clipped["training"]["losses"], rel=1e-5)
    assert scaled["training"]["grad"]["global_norm_first"] == pytest.approx(
        g1["global_norm_first"], rel=1e-4
    )
    # what script mode can see of throughput and FLOPs: tokens from the model's integer input
    t = unclipped["training"]
    assert t["input_shape"] == [8, 32] and t["tokens_per_step"] == 8 * 32
    assert t["flops_per_step"] and unclipped["performance"]["tokens_per_sec"] > 0
    assert check(unclipped, "initial loss")["status"] == "pass"  # ~ln(vocab)
    assert check(unclipped, "label range")["status"] == "pass"
    assert unclipped["device"].startswith("cpu (")


def test_lbfgs_closure_steps_and_gradients(capsys):
    code, r = run(capsys, "script_lbfgs.py", "--steps", "10")
    t = r["training"]
    assert t["steps"] == 10 and len(t["losses"]) == 10 and t["stop_reason"] == "max steps reached"
    assert t["grad"]["never_received_grad"] == [] and "nan" not in str(
        t["grad"]["global_norm_first"]
    )
    assert check(r, "loss trend")["status"] == "pass", r["checks"]  # converges fast, to ~1e-4
    assert code == 0, r["checks"]


def test_manual_sgd_counts_backward_passes(capsys):
    code, r = run(capsys, "script_manual_sgd.py", "--steps", "15")
    t = r["training"]
    assert t["steps"] == 15 and t["stop_reason"] == "max steps reached"
    assert t["steps_counted_as"].startswith("backward passes")
    assert t["grad"]["clip"]["steps"] == 15 and t["grad"]["never_received_grad"] == []
    assert check(r, "loss trend")["status"] == "pass" and code == 0, r["checks"]
    code, flat = run(capsys, "script_manual_sgd.py", "--steps", "15", "--", "--lr", "0")
    assert check(flat, "loss trend")["status"] == "fail" and code == 1
    code, clipped = run(capsys, "script_manual_sgd.py", "--steps", "8", "--", "--clip", "0.01")
    assert check(clipped, "gradient clipping")["status"] == "fail"


def test_max_seconds_bounds_the_whole_run_including_start_up(capsys):
    t0 = time.perf_counter()
    code, r = run(
        capsys, "script_manual_sgd.py", "--max-seconds", "2", "--", "--startup-sleep", "60"
    )
    assert time.perf_counter() - t0 < 20
    assert r["training"]["steps"] == 0 and "time limit 2 s" in r["training"]["stop_reason"]
    assert check(r, "training steps")["status"] == "fail" and code == 1
    code, r = run(capsys, "script_manual_sgd.py", "--steps", "100000", "--max-seconds", "4")
    assert 0 < r["training"]["steps"] < 100000 and "time limit" in r["training"]["stop_reason"]
