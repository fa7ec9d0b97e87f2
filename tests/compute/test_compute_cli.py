"""``python -m toolkit.compute`` end to end, in a subprocess: JSON fields, exit codes, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROG = "toolkit.compute"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", PROG, *args], capture_output=True, text=True, timeout=60
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_memory_json_fields_and_exit_1_when_it_does_not_fit():
    r = run_cli("memory", "--preset", "llama-3-8b", "--gpu", "h100-sxm", "--format", "json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["params"] == 8_030_261_248 == out["trainable_params"]
    for key in ("weights", "gradients", "optimizer_states", "activations", "framework_overhead"):
        assert key in out["bytes"] and key in out["formulas"]
    assert out["bytes"]["total_per_gpu"] == sum(
        v for k, v in out["bytes"].items() if k != "total_per_gpu"
    )
    assert out["fits"] is False
    assert out["usable_bytes"] == int(0.85 * 80 * 2**30)
    assert any("assumption" in a for a in out["assumptions"])


def test_memory_zero3_over_8_gpus_fits_with_exit_0():
    r = run_cli(
        "memory", "--preset", "llama-3-8b", "--zero-stage", "3", "--gpus", "8",
        "--recompute", "selective", "--gpu", "h100-sxm", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fits"] is True
    assert out["bytes"]["weights"] == -(-2 * 8_030_261_248 // 8)


def test_memory_table_without_gpu_shows_formulas_and_exit_0():
    r = run_cli("memory", "--preset", "gpt2", "--method", "lora", "--lora-rank", "4")
    assert r.returncode == 0, r.stderr
    for needle in ("weights", "optimizer_states", "sbh", "total_per_gpu", "no fit verdict"):
        assert needle in r.stdout


def test_memory_inference_has_kv_cache():
    r = run_cli(
        "memory", "--preset", "llama-3-8b", "--mode", "inference", "--seq-len", "8192",
        "--micro-batch", "2", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bytes"]["kv_cache"] == 131_072 * 2 * 8192


def test_kv_cache_json():
    r = run_cli("kv-cache", "--preset", "llama-3-8b", "--context", "8192", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["bytes_per_token"] == 131_072
    assert out["total_bytes"] == 131_072 * 8192


def test_time_and_chinchilla():
    r = run_cli("time", "--params", "70e9", "--tokens", "1.4e12", "--gpus", "1024",
                "--peak-tflops", "312", "--mfu", "0.5", "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["total_flops"] == pytest.approx(5.88e23)
    assert out["seconds"] == pytest.approx(5.88e23 / (1024 * 312e12 * 0.5))
    r = run_cli("time", "--preset", "gpt2", "--tokens", "1e10", "--gpu", "a100-sxm-80gb")
    assert r.returncode == 0, r.stderr
    assert "C = 6*N*D" in r.stdout and "312" in r.stdout
    r = run_cli("chinchilla", "--params", "70e9", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tokens"] == pytest.approx(1.4e12)


def test_help_states_units():
    r = run_cli("memory", "--help")
    assert r.returncode == 0
    assert "bytes" in r.stdout and "0.85" in r.stdout and "sbh(34 + 5as/h)" in r.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["memory", "--preset", "llama-3-8b", "--zero-stage", "3"], ["--zero-stage 3", "--gpus"]),
        (["memory", "--preset", "gpt2", "--fsdp", "full", "--zero-stage", "1", "--gpus", "4"],
         ["--fsdp", "--zero-stage"]),
        (["memory", "--preset", "gpt2", "--lora-rank", "8"], ["--lora-rank", "--method"]),
        (["memory", "--preset", "gpt2", "--micro-batch", "-2"], ["--micro-batch"]),
        (["memory", "--preset", "bert"], ["unknown preset"]),
        (["memory", "--preset", "gpt2", "--gpu", "tpu-v5"], ["tpu-v5"]),
        (["memory"], ["--config", "--preset"]),
        (["memory", "--config", "/nonexistent/config.json"], ["--config"]),
        (["kv-cache", "--preset", "gpt2", "--context", "0"], ["--context"]),
        (["time", "--params", "1e9", "--tokens", "1e9"], ["--gpu", "--peak-tflops"]),
        (["time", "--params", "1e9", "--tokens", "1e9", "--peak-tflops", "1", "--mfu", "2"],
         ["--mfu"]),
        (["chinchilla", "--params", "1e9", "--tokens", "1e9"], ["exactly one"]),
    ],
)  # fmt: skip
def test_bad_input_exits_2_naming_the_flag(args, needles):
    assert_usage_error(run_cli(*args), *needles)


def test_config_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    assert_usage_error(run_cli("memory", "--config", str(bad)), "model_type", "bert")
    bad.write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    assert_usage_error(run_cli("kv-cache", "--config", str(bad)), "num_attention_heads")
