"""``python -m toolkit.profiling.mfu_calculator`` end to end, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROG = "toolkit.profiling.mfu_calculator"
GOOD = ["--preset", "gpt2", "--seq-len", "1024", "--tokens-per-sec", "1e5", "--peak-tflops", "312"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", PROG, *args], capture_output=True, text=True, timeout=60
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


# ----------------------------------------------------------------------------- success


def test_json_output_reproduces_palm_style_arithmetic():
    result = run_cli(*GOOD, "--num-gpus", "2", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    u, f = report["utilization"], report["flops"]
    assert f["model_per_token"] == 6 * f["matmul_params"] + 12 * 12 * 12 * 64 * 1024
    assert u["mfu"] == pytest.approx(1e5 / 2 * f["model_per_token"] / 312e12)
    assert u["hfu"] == u["mfu"]
    assert report["params"]["total"] == 124_439_808


def test_table_shows_the_arithmetic():
    result = run_cli(*GOOD, "--recompute", "full")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in ("6N = 6 x 123,532,032", "12*L*H*Q*T = 12 x 12 x 12 x 64 x 1024", "MFU", "HFU"):
        assert needle in out
    mfu = float(out.split("\nMFU")[1].split("%")[0].split()[-1])
    hfu = float(out.split("\nHFU")[1].split("%")[0].split()[-1])
    assert hfu > mfu


def test_step_time_path_matches_tokens_per_sec_path():
    by_rate = json.loads(run_cli(*GOOD, "--format", "json").stdout)
    by_step = run_cli(
        "--preset",
        "gpt2",
        "--seq-len",
        "1024",
        "--step-time-ms",
        "500",
        "--tokens-per-step",
        "50000",
        "--peak-tflops",
        "312",
        "--format",
        "json",
    )
    assert by_step.returncode == 0, by_step.stderr
    assert json.loads(by_step.stdout)["utilization"]["mfu"] == pytest.approx(
        by_rate["utilization"]["mfu"]
    )


def test_causal_lowers_mfu():
    full = json.loads(run_cli(*GOOD, "--format", "json").stdout)["utilization"]["mfu"]
    causal = json.loads(run_cli(*GOOD, "--causal", "--format", "json").stdout)
    assert causal["utilization"]["mfu"] < full


def test_config_path_works(tmp_path):
    from toolkit.compute.model_config import PRESET_DIR

    path = tmp_path / "config.json"
    path.write_text((PRESET_DIR / "llama-3-8b.json").read_text())
    result = run_cli(
        "--config",
        str(path),
        "--seq-len",
        "8192",
        "--tokens-per-sec",
        "3e5",
        "--peak-tflops",
        "989",
        "--num-gpus",
        "64",
    )
    assert result.returncode == 0, result.stderr
    assert "8,030,261,248" in result.stdout


def test_mfu_above_100_percent_exits_1_with_warning():
    result = run_cli(
        "--preset", "gpt2", "--seq-len", "1024", "--tokens-per-sec", "1e9", "--peak-tflops", "312"
    )
    assert result.returncode == 1
    assert "above 100%" in result.stdout


def test_help_explains_units():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps to the terminal width
    for needle in (
        "tokens/s summed over ALL GPUs",
        "dense peak of ONE GPU in TFLOP/s",
        "in milliseconds",
        "sequence length T in tokens",
        "counted in HFU only, never MFU",
    ):
        assert needle in text


# ----------------------------------------------------------------------------- exit 2


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope" / "config.json"
    result = run_cli("--config", str(missing), *GOOD[2:])
    assert_usage_error(result, str(missing), "not found")


def test_invalid_config_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "llama",\n  "hidden_size": 4096,,\n}\n')
    assert_usage_error(
        run_cli("--config", str(path), *GOOD[2:]), str(path), "invalid JSON", "line 3"
    )


def test_config_missing_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    assert_usage_error(run_cli("--config", str(path), *GOOD[2:]), str(path), "num_attention_heads")


def test_config_unsupported_model_type(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "t5"}))
    assert_usage_error(run_cli("--config", str(path), *GOOD[2:]), "'t5'", "llama", "mixtral")


def test_unknown_preset_lists_known():
    result = run_cli("--preset", "llama-9", *GOOD[2:])
    assert_usage_error(result, "unknown preset 'llama-9'", "gpt2", "qwen2.5-7b")


def test_unknown_gpu():
    pytest.importorskip("toolkit.hardware.specs")
    args = ["--preset", "gpt2", "--seq-len", "1024", "--tokens-per-sec", "1e5"]
    result = run_cli(*args, "--gpu", "voodoo5-6000")
    assert_usage_error(result, "voodoo5-6000", "--peak-tflops")


def test_known_gpu_peak_is_used():
    specs = pytest.importorskip("toolkit.hardware.specs")
    keys = specs.known_keys()
    key = "a100-sxm-80gb" if "a100-sxm-80gb" in keys else keys[0]
    spec = specs.get_spec(key)
    args = ["--preset", "gpt2", "--seq-len", "1024", "--tokens-per-sec", "1e5"]
    result = run_cli(*args, "--gpu", key, "--dtype", "bf16", "--format", "json")
    assert result.returncode == 0, result.stderr
    peak = json.loads(result.stdout)["utilization"]["peak_flops_per_gpu"]
    assert peak == pytest.approx(spec.peak_flops("bf16"))
    if key == "a100-sxm-80gb":
        assert peak == pytest.approx(312e12)  # A100 bf16 dense, as nanoGPT's estimate_mfu uses


def test_gpu_without_the_dtype_is_a_usage_error():
    specs = pytest.importorskip("toolkit.hardware.specs")
    lacking = next((s for s in specs.all_specs() if "fp8" not in s.peak_tflops), None)
    if lacking is None:
        pytest.skip("every known GPU has an fp8 peak")
    args = ["--preset", "gpt2", "--seq-len", "1024", "--tokens-per-sec", "1e5"]
    assert_usage_error(run_cli(*args, "--gpu", lacking.key, "--dtype", "fp8"), "fp8")


@pytest.mark.parametrize("value", ["0", "-5", "nan", "fast"])
def test_non_positive_tokens_per_sec(value):
    result = run_cli(
        "--preset", "gpt2", "--seq-len", "1024", f"--tokens-per-sec={value}", "--peak-tflops", "312"
    )
    assert_usage_error(result, "--tokens-per-sec expects a positive number")


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--seq-len", "0"), ("--num-gpus", "0"), ("--peak-tflops", "-1"), ("--step-time-ms", "0")],
)
def test_other_non_positive_flags(flag, value):
    options = dict(zip(GOOD[::2], GOOD[1::2], strict=True))
    options[flag] = value
    result = run_cli(*(f"{k}={v}" for k, v in options.items()))
    assert_usage_error(result, f"{flag} expects a positive")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["--seq-len", "1024", "--tokens-per-sec", "1e5", "--peak-tflops", "312"],
            ["one of the arguments --config --preset is required"],
        ),
        (["--preset", "gpt2", "--tokens-per-sec", "1e5", "--peak-tflops", "312"], ["--seq-len"]),
        (
            ["--preset", "gpt2", "--seq-len", "1024", "--peak-tflops", "312"],
            ["--tokens-per-sec", "--step-time-ms"],
        ),
        (
            [
                "--preset",
                "gpt2",
                "--seq-len",
                "1024",
                "--step-time-ms",
                "100",
                "--peak-tflops",
                "312",
            ],
            ["--step-time-ms needs --tokens-per-step"],
        ),
        (
            ["--preset", "gpt2", "--seq-len", "1024", "--tokens-per-sec", "1e5"],
            ["--gpu", "--peak-tflops"],
        ),
        (
            [*GOOD, "--step-time-ms", "100", "--tokens-per-step", "1000"],
            ["either --tokens-per-sec or --step-time-ms"],
        ),
        (["--preset", "gpt2", "--config", "x.json", *GOOD[2:]], ["not allowed with"]),
        ([*GOOD, "--recompute", "half"], ["--recompute", "invalid choice"]),
    ],
)
def test_missing_or_conflicting_combinations(args, needles):
    assert_usage_error(run_cli(*args), *needles)
