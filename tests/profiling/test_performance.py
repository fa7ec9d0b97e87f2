"""Peak FLOPS resolution and MFU arithmetic of the runtime validator.

The CUDA path is exercised by faking the two torch.cuda queries it makes (device name and
total memory), with the values an H100 PCIe really reports.
"""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from toolkit.errors import InputError
from toolkit.hardware.specs import get_spec
from toolkit.profiling.validator import performance
from toolkit.profiling.validator.gradients import GradTracker
from toolkit.profiling.validator.runtime import StepTimes, TrainResult

CUDA = torch.device("cuda", 0)
MIB = 1024**2


@pytest.fixture
def fake_gpu(monkeypatch):
    def install(name: str, total_mib: int) -> None:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(
            torch.cuda,
            "get_device_properties",
            lambda device=None: SimpleNamespace(total_memory=total_mib * MIB),
        )

    return install


def test_detected_h100_pcie_resolves_to_its_own_peak(fake_gpu):
    fake_gpu("NVIDIA H100 PCIe", 81559)
    peak = performance.resolve_peak(CUDA, "bf16", gpu=None, peak_tflops=None)
    assert peak.flops_per_s == get_spec("h100-pcie").peak_flops("bf16")
    assert peak.flops_per_s != get_spec("h100-sxm").peak_flops("bf16")
    assert "detected 'NVIDIA H100 PCIe'" in peak.source


def test_unknown_detected_gpu_is_said_not_guessed(fake_gpu):
    fake_gpu("NVIDIA Quantum Accelerator 9000", 40000)
    peak = performance.resolve_peak(CUDA, "bf16", gpu=None, peak_tflops=None)
    assert peak.flops_per_s is None
    assert "not in the spec table" in peak.source and "--peak-tflops" in peak.source


def test_dtype_the_part_lacks_gives_no_peak(fake_gpu):
    fake_gpu("Tesla V100-SXM2-32GB", 32510)
    peak = performance.resolve_peak(CUDA, "bf16", gpu=None, peak_tflops=None)
    assert peak.flops_per_s is None and "bf16" in peak.source


def test_explicit_flags_win_and_unknown_gpu_flag_is_an_input_error():
    cpu = torch.device("cpu")
    assert performance.resolve_peak(cpu, "fp32", None, 2.5).flops_per_s == 2.5e12
    assert performance.resolve_peak(cpu, "bf16", "a100-sxm-80gb", None).flops_per_s == 312e12
    with pytest.raises(InputError, match="--peak-tflops"):
        performance.resolve_peak(cpu, "bf16", "rtx-9090", None)
    assert performance.resolve_peak(cpu, "fp32", None, None).flops_per_s is None


def _train(flops: int | None, mean_ms: float) -> TrainResult:
    times = StepTimes(10, mean_ms, mean_ms, mean_ms, mean_ms, mean_ms, {})
    return TrainResult(
        steps=10,
        warmup_steps=0,
        stop_reason="",
        train_s=mean_ms * 10 / 1e3,
        first_step_ms=mean_ms,
        times=times,
        losses=[],
        grad=GradTracker().summary(),
        flops_per_step=flops,
        flops_note="",
        tokens_per_step=4096,
        throughput_unit="tokens",
    )


def test_mfu_arithmetic_against_a100():
    # 100 TFLOP per step in 0.5 s on an A100 (312 TFLOP/s bf16): 200 / 312 = 64.1%
    perf = performance.measure(_train(int(100e12), 500.0), performance.Peak(312e12, "bf16", "test"))
    assert perf.achieved_tflops == pytest.approx(200.0)
    assert perf.mfu == pytest.approx(200 / 312)
    assert perf.tokens_per_sec == pytest.approx(4096 / 0.5)


def test_mfu_not_measured_is_explained():
    perf = performance.measure(_train(None, 10.0), performance.Peak(312e12, "bf16", "test"))
    assert perf.mfu is None and perf.mfu_note.startswith("not measured")
    perf = performance.measure(
        _train(10**9, 10.0), performance.Peak(None, "fp32", "no peak FLOPS for this CPU")
    )
    assert perf.mfu is None and "no peak FLOPS for this CPU" in perf.mfu_note


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("pass", "fp32"),
        (
            "torch.backends.cuda.matmul.fp32_precision = 'tf32'",
            "tf32",
        ),  # new API: legacy readers raise
        ("torch.backends.cuda.matmul.fp32_precision = 'ieee'", "fp32"),
        ("torch.backends.cuda.matmul.allow_tf32 = True", "tf32"),
        ("torch.set_float32_matmul_precision('high')", "tf32"),
    ],
)
def test_tf32_inferred_for_fp32_params_on_cuda_under_every_api(setup, expected):
    # a subprocess: TF32 flags are process-global and mixing APIs poisons later readers
    code = (
        "import warnings, torch; warnings.simplefilter('ignore'); "
        f"{setup}; "
        "from toolkit.profiling.validator.performance import infer_dtype; "
        "print(infer_dtype(torch.nn.Linear(2, 2), torch.device('cuda')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_half_precision_params_give_their_dtype():
    cpu = torch.device("cpu")
    assert performance.infer_dtype(torch.nn.Linear(2, 2).to(torch.bfloat16), cpu) == "bf16"
    assert performance.infer_dtype(torch.nn.Linear(2, 2).to(torch.float16), cpu) == "fp16"
    assert performance.infer_dtype(torch.nn.Linear(2, 2), cpu) == "fp32"


def test_thresholds_pass_and_fail_with_numbers():
    from toolkit.profiling.validator.thresholds import Thresholds

    tr = _train(int(100e12), 500.0)
    perf = performance.measure(tr, performance.Peak(312e12, "bf16", "test"))  # MFU 64.1%
    checks = performance.judge(
        perf, tr, Thresholds(min_mfu=0.5, max_step_time_ms=400, min_tokens_per_sec=1000)
    )
    by_name = {c.name: c for c in checks}
    assert by_name["MFU"].status == "pass" and "64.1% >= 50.0%" in by_name["MFU"].message
    assert by_name["step time"].status == "fail" and "500 > 400 ms" in by_name["step time"].message
    assert by_name["throughput"].status == "pass"


def test_mfu_above_100_percent_fails_even_without_threshold():
    from toolkit.profiling.validator.thresholds import Thresholds

    tr = _train(int(100e12), 500.0)  # 200 TFLOP/s achieved
    perf = performance.measure(tr, performance.Peak(100e12, "bf16", "--peak-tflops 100"))
    checks = performance.judge(perf, tr, Thresholds())
    assert [c.status for c in checks] == ["fail"]
    assert "above 100%" in checks[0].message and "--peak-tflops 100" in checks[0].message
