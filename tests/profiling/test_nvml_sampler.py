"""toolkit.profiling.instruments.nvml_sampler against the fake pynvml (tests/fakes/pynvml) and this machine.

Exact means come from the fake's per-GPU sequences: the n-th call of a reading returns item n
(cycling), so the expected summary of n samples is known. A GPU with ``lost_after: k`` answers
exactly k sweeps, which pins the sample count without depending on thread timing.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from itertools import cycle, islice
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.hardware.conftest import load_fake_pynvml
from toolkit import cli
from toolkit.errors import InputError
from toolkit.profiling.instruments import nvml_sampler
from toolkit.profiling.instruments.nvml_sampler import (
    CLOCK_EVENT_REASONS,
    METRICS,
    NvmlResult,
    NvmlSampler,
    main,
    nvml_reason,
)

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
GIB = 1024**3

SERIES = {
    "util_gpu_pct": [10, 30, 50],
    "util_memory_pct": [5, 15, 25],
    "memory_used_bytes": [GIB, 3 * GIB, 2 * GIB],
    "power_mw": [150000, 250500, 100250],
    "sm_clock_mhz": [990, 1980, 1485],
    "temperature_c": [40, 60, 50],
    "pcie_tx_kbps": [100, 300, 200],
    "pcie_rx_kbps": [200, 400, 600],
    "clocks_event_reasons": [0, 0x4, 0x4 | 0x40],
}


def gpu(name: str = "NVIDIA H100 80GB HBM3", **extra: object) -> dict:
    """A fake GPU with the standard sequences (override keys with ``extra``)."""
    device = {
        "name": name,
        "memory_total": 80 * GIB,
        "pci_device_id": 0x2330,
        "series": dict(SERIES),
        "max_clock_mhz": {"sm": 1980},
    }
    device.update(extra)
    return device


def expected(values: list[float], n: int) -> list[float]:
    """The first ``n`` values the fake returns for a cycling sequence."""
    return list(islice(cycle(values), n))


@pytest.fixture(autouse=True)
def _no_scenario(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAKE_PYNVML_SCENARIO", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """``use(devices, init_error=None) -> fake module``: the fake pynvml with that machine."""
    module = load_fake_pynvml(monkeypatch)

    def use(devices: list[dict] | None = None, init_error: str | None = None) -> ModuleType:
        scenario = {"init_error": init_error, "devices": devices or []}
        monkeypatch.setenv("FAKE_PYNVML_SCENARIO", json.dumps(scenario))
        return module

    return use


def sample_for(seconds: float, **kwargs: object) -> NvmlResult:
    with NvmlSampler(**kwargs) as sampler:  # type: ignore[arg-type]
        time.sleep(seconds)
    assert sampler.result is not None
    return sampler.result


def wait_for_thread_end(sampler: NvmlSampler, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while sampler.running and time.monotonic() < deadline:
        time.sleep(0.005)


# ----------------------------------------------------------------------------- exact values


def test_exact_summaries_from_a_fixed_number_of_sweeps(fake) -> None:
    fake([gpu(lost_after=6)])
    sampler = NvmlSampler(interval_s=0.002).start()
    wait_for_thread_end(sampler)  # the only GPU is lost after 6 sweeps, so the thread ends
    result = sampler.stop()
    g = result.gpu(0)
    assert g.metrics["util_gpu_pct"].count == 6
    assert g.metrics["util_gpu_pct"].mean == 30.0  # two whole cycles of 10, 30, 50
    assert g.metrics["util_gpu_pct"].p50 == 30.0
    assert (g.metrics["util_gpu_pct"].min, g.metrics["util_gpu_pct"].max) == (10.0, 50.0)
    assert g.metrics["util_memory_pct"].mean == 15.0
    assert g.metrics["memory_used_bytes"].mean == 2 * GIB
    assert g.metrics["memory_used_pct"].mean == pytest.approx(2.5)
    assert g.metrics["temperature_c"].mean == 50.0
    assert g.metrics["pcie_tx_kbps"].mean == 200.0
    assert g.metrics["pcie_rx_kbps"].mean == 400.0
    assert g.memory_total_bytes == 80 * GIB
    assert g.lost_at_s is not None


def test_means_match_the_sequences_for_whatever_count_a_timed_run_gets(fake) -> None:
    fake([gpu(), gpu(series={**SERIES, "util_gpu_pct": [99, 1]})])
    result = sample_for(0.15, interval_s=0.01)
    for index, seq in ((0, SERIES["util_gpu_pct"]), (1, [99, 1])):
        m = result.gpu(index).metrics["util_gpu_pct"]
        values = expected(seq, m.count)
        assert m.count >= 5
        assert m.mean == pytest.approx(np.mean(values), abs=1e-12)
        assert m.p50 == np.median(values)
        assert (m.min, m.max) == (min(values), max(values))


def test_power_milliwatts_become_watts(fake) -> None:
    fake([gpu(lost_after=3)])
    result = sample_for(0.1, interval_s=0.002)
    power = result.gpu(0).metrics["power_w"]
    assert power.count == 3
    assert power.mean == pytest.approx((150.0 + 250.5 + 100.25) / 3)
    assert (power.min, power.max) == (100.25, 250.5)
    assert list(result.gpu(0).samples["power_w"].values) == [150.0, 250.5, 100.25]


def test_sm_clock_ratio_is_current_over_max(fake) -> None:
    fake([gpu(lost_after=3)])
    g = sample_for(0.1, interval_s=0.002).gpu(0)
    assert g.max_sm_clock_mhz == 1980
    assert list(g.samples["sm_clock_ratio"].values) == [0.5, 1.0, 0.75]
    assert g.metrics["sm_clock_ratio"].mean == pytest.approx(0.75)
    assert g.metrics["sm_clock_mhz"].mean == pytest.approx(1485.0)


def test_missing_max_clock_leaves_the_ratio_not_measured(fake) -> None:
    fake([gpu(max_clock_mhz={}, lost_after=2)])
    g = sample_for(0.05, interval_s=0.002).gpu(0)
    assert "sm_clock_mhz" in g.metrics
    assert "sm_clock_ratio" not in g.metrics
    assert "max SM clock unavailable" in g.not_measured["sm_clock_ratio"]


def test_clock_event_reasons_are_percent_of_samples(fake) -> None:
    fake([gpu(lost_after=3)])
    pct = sample_for(0.1, interval_s=0.002).gpu(0).clock_event_reasons_pct
    assert pct["sw_power_cap"] == pytest.approx(200 / 3)
    assert pct["hw_thermal_slowdown"] == pytest.approx(100 / 3)
    assert pct["gpu_idle"] == 0.0


# ----------------------------------------------------------------------------- unsupported, errors


def test_not_supported_field_is_reported_once_and_never_as_zero(fake, monkeypatch) -> None:
    module = fake([gpu(errors={"nvmlDeviceGetPowerUsage": "NOT_SUPPORTED"})])
    calls = []
    real_power = module.nvmlDeviceGetPowerUsage

    def counting(handle):
        calls.append(handle)
        return real_power(handle)

    monkeypatch.setattr(module, "nvmlDeviceGetPowerUsage", counting)
    result = sample_for(0.1, interval_s=0.005)
    g = result.gpu(0)
    assert "power_w" not in g.metrics
    assert "not supported" in g.not_measured["power_w"]
    assert "NVMLError_NotSupported" in g.not_measured["power_w"]
    assert len(g.samples["power_w"]) == 0
    assert len(calls) == 1, "a NotSupported reading must not be retried every sweep"
    assert g.metrics["util_gpu_pct"].count > 3  # the other readings carry on
    assert result.to_dict()["gpus"][0]["not_measured"]["power_w"].startswith("not supported")


def test_sensor_missing_from_the_series_is_not_supported(fake) -> None:
    series = {k: v for k, v in SERIES.items() if k != "temperature_c"}
    fake([gpu(series=series, lost_after=2)])
    g = sample_for(0.05, interval_s=0.002).gpu(0)
    assert "temperature_c" not in g.metrics
    assert "not supported" in g.not_measured["temperature_c"]


def test_old_driver_falls_back_to_the_older_nvml_functions(fake) -> None:
    errors = {
        "nvmlDeviceGetCurrentClocksEventReasons": "FUNCTION_NOT_FOUND",
        "nvmlDeviceGetTemperatureV": "FUNCTION_NOT_FOUND",
    }
    fake([gpu(errors=errors, lost_after=3)])
    g = sample_for(0.1, interval_s=0.002).gpu(0)
    assert g.metrics["temperature_c"].count == 3  # the first sweep retried with the old call
    assert g.metrics["temperature_c"].mean == 50.0
    assert g.clock_event_reasons_pct["sw_power_cap"] == pytest.approx(200 / 3)
    assert not g.not_measured


def test_transient_errors_are_counted_and_retried(fake) -> None:
    fake([gpu(errors={"nvmlDeviceGetPcieThroughput": "TIMEOUT"}, lost_after=4)])
    g = sample_for(0.1, interval_s=0.002).gpu(0)
    assert g.read_errors["pcie_tx_kbps"].startswith(
        "4 read(s) failed; first: the NVML call timed out"
    )
    assert g.not_measured["pcie_tx_kbps"].startswith("every read failed")
    assert "pcie_tx_kbps" not in g.metrics


def test_gpu_lost_mid_run_keeps_its_samples_and_the_other_gpus(fake) -> None:
    fake([gpu(), gpu(lost_after=3)])
    result = sample_for(0.2, interval_s=0.01)
    healthy, lost = result.gpu(0), result.gpu(1)
    assert lost.metrics["util_gpu_pct"].count == 3
    assert lost.metrics["util_gpu_pct"].mean == 30.0
    assert lost.lost_at_s is not None and lost.lost_at_s > 0
    assert "NVMLError_GpuIsLost" in (lost.lost_reason or "")
    assert healthy.lost_at_s is None
    assert healthy.metrics["util_gpu_pct"].count > 3
    assert any("GPU 1 lost at" in n for n in result.notes)


def test_gpu_that_cannot_be_opened_is_skipped_with_a_note(fake) -> None:
    fake([gpu(), gpu(errors={"nvmlDeviceGetHandleByIndex": "GPU_IS_LOST"})])
    result = sample_for(0.05, interval_s=0.01)
    assert result.available
    assert result.gpu(0).metrics
    assert result.gpu(1).lost_at_s == 0.0 and not result.gpu(1).metrics
    assert any("GPU 1: not sampled" in n for n in result.notes)


# ----------------------------------------------------------------------------- NVML unavailable


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("LIBRARY_NOT_FOUND", "NVML shared library not found"),
        ("NO_PERMISSION", "no permission"),
        ("DRIVER_NOT_LOADED", "driver not loaded"),
        ("GPU_IS_LOST", "fell off the bus"),
        ("NOT_SUPPORTED", "not supported"),
        ("UNINITIALIZED", "not initialized"),
        ("UNKNOWN", "unknown NVML error"),
        ("LIB_RM_VERSION_MISMATCH", "versions differ"),
    ],
)
def test_init_failure_gives_unavailable_with_a_clear_reason(fake, code: str, words: str) -> None:
    module = fake([gpu()], init_error=code)
    sampler = NvmlSampler().start()
    assert sampler.available is False and not sampler.running
    result = sampler.stop()
    assert result.available is False
    assert result.reason.startswith("NVML unavailable: ")
    assert words in result.reason
    cls = type(module.NVMLError(getattr(module, f"NVML_ERROR_{code}"))).__name__
    assert f"pynvml.{cls}" in result.reason
    numbers = {k: v for k, v in result.to_dict().items() if k not in ("available", "reason")}
    assert all(v in (None, [], {}) for v in numbers.values()), numbers


def test_no_gpus_and_listing_failures_are_unavailable(fake) -> None:
    fake([])
    assert sample_for(0.0).reason == "NVML unavailable: NVML works but reports no GPUs"


def test_nvml_reason_covers_every_error_class(fake) -> None:
    module = fake()
    for cls in module.NVMLError._valClassMapping.values():
        text = nvml_reason(cls())
        meaning, _, tail = text.partition(" (pynvml.")
        assert meaning and tail == f"{cls.__name__})", text


def test_real_pynvml_without_a_driver_is_unavailable() -> None:
    if _driver_present():
        pytest.skip("an NVIDIA driver is present on this machine")
    real = importlib.import_module("pynvml")
    assert "site-packages" in (real.__file__ or "")
    result = NvmlSampler().start().stop()
    assert result.available is False
    assert result.reason.startswith("NVML unavailable: NVML shared library not found")


def test_cli_exits_1_with_the_reason_on_this_machine() -> None:
    if _driver_present():
        pytest.skip("an NVIDIA driver is present on this machine")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FAKE_PYNVML_SCENARIO")}
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit.profiling.nvml_sampler", "sample", "--duration-s", "5"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("NVML unavailable: NVML shared library not found")
    assert "Traceback" not in proc.stderr


def _driver_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------- lifecycle, timing


def test_start_stop_idempotent_thread_joined_and_nvml_shut_down(fake) -> None:
    module = fake([gpu()])
    sampler = NvmlSampler(interval_s=0.01)
    assert sampler.available is None and sampler.result is None
    with pytest.raises(RuntimeError):
        sampler.stop()
    sampler.start()
    assert sampler.running and module._state["initialized"] == 1
    with pytest.raises(RuntimeError):
        sampler.start()
    time.sleep(0.03)
    first = sampler.stop()
    assert not sampler.running
    assert sampler.stop() is first is sampler.result
    assert module._state["initialized"] == 0, "nvmlShutdown must be called exactly once"
    assert not [t for t in threading.enumerate() if t.name == "nvml-sampler"]


def test_context_manager_stops_on_error(fake) -> None:
    module = fake([gpu()])
    sampler = NvmlSampler(interval_s=0.01)
    with pytest.raises(ZeroDivisionError), sampler:
        1 / 0  # noqa: B018
    assert not sampler.running and sampler.result is not None and sampler.result.available
    assert module._state["initialized"] == 0


def test_unknown_gpu_index_is_an_input_error_and_nvml_is_released(fake) -> None:
    module = fake([gpu(), gpu()])
    with pytest.raises(InputError, match="GPU index 5 not found: NVML sees 2 GPU"):
        NvmlSampler(gpus=[5]).start()
    assert module._state["initialized"] == 0


def test_gpu_selection(fake) -> None:
    fake([gpu(), gpu(), gpu()])
    result = sample_for(0.03, interval_s=0.01, gpus=[2, 0, 2])
    assert [g.index for g in result.gpus] == [2, 0]


def test_warmup_is_trimmed_by_time(fake) -> None:
    fake([gpu()])
    result = sample_for(0.3, interval_s=0.01, warmup_s=0.1)
    g = result.gpu(0)
    times = np.asarray(g.samples["util_gpu_pct"].times_s)
    kept = int((times >= 0.1).sum())
    assert 0 < kept < len(times)
    assert g.metrics["util_gpu_pct"].count == kept
    values = np.asarray(g.samples["util_gpu_pct"].values)[times >= 0.1]
    assert g.metrics["util_gpu_pct"].mean == pytest.approx(values.mean())
    full = result.summarized(0.0).gpu(0).metrics["util_gpu_pct"]
    assert full.count == len(times)
    everything_trimmed = result.summarized(60.0).gpu(0)
    assert not everything_trimmed.metrics
    assert "no samples after the 60 s warm-up" in everything_trimmed.not_measured["power_w"]


def test_sampling_cost_is_measured_and_small(fake) -> None:
    fake([gpu(), gpu()])
    result = sample_for(0.2, interval_s=0.01)
    assert result.sweep_ms_mean is not None and result.sweep_cpu_ms_mean is not None
    assert 0 < result.sweep_ms_mean < 5.0  # two fake GPUs: well under a millisecond normally
    assert result.sweep_ms_max is not None and result.sweep_ms_max >= result.sweep_ms_mean
    assert result.overhead_pct is not None and 0 <= result.overhead_pct < 25.0
    assert result.late_sweeps == 0 or result.late_sweeps < (result.sweeps or 0)


def test_interval_is_roughly_honoured(fake) -> None:
    fake([gpu()])
    result = sample_for(0.5, interval_s=0.02)
    assert result.sweeps is not None and 15 <= result.sweeps <= 30  # 26 expected
    times = np.asarray(result.gpu(0).samples["util_gpu_pct"].times_s)
    assert np.median(np.diff(times)) == pytest.approx(0.02, rel=0.5)
    assert result.duration_s == pytest.approx(0.5, abs=0.2)


def test_slow_sweeps_are_reported(fake) -> None:
    fake([gpu(delay_ms={"nvmlDeviceGetPcieThroughput": 15})])
    result = sample_for(0.2, interval_s=0.01)
    assert result.late_sweeps and result.sweep_ms_mean and result.sweep_ms_mean > 25
    assert any("--no-pcie" in n for n in result.notes)
    fast = sample_for(0.05, interval_s=0.01, pcie=False)
    assert (
        "pcie_tx_kbps" not in fast.gpu(0).metrics and "pcie_tx_kbps" not in fast.gpu(0).not_measured
    )


# ----------------------------------------------------------------------------- output, CLI


def test_json_leaves_raw_samples_out_unless_asked(fake) -> None:
    fake([gpu(lost_after=2)])
    result = sample_for(0.05, interval_s=0.002)
    plain = json.loads(json.dumps(result.to_dict()))
    assert "samples" not in plain["gpus"][0]
    assert plain["gpus"][0]["metrics"]["power_w"]["mean"] == pytest.approx(200.25)
    full = json.loads(json.dumps(result.to_dict(samples=True)))
    t0, v0 = full["gpus"][0]["samples"]["power_w"][0]
    assert v0 == 150.0 and 0 <= t0 < 0.05


def test_metric_names_carry_units() -> None:
    units = ("_pct", "_bytes", "_w", "_mhz", "_ratio", "_c", "_kbps")
    assert all(name.endswith(units) for name in METRICS)


def test_fake_matches_the_real_module_for_the_sampler(monkeypatch) -> None:
    real = importlib.import_module("pynvml")
    assert "site-packages" in (real.__file__ or "")
    fake_mod = load_fake_pynvml(monkeypatch)
    for name in (
        "NVML_CLOCK_SM",
        "NVML_TEMPERATURE_GPU",
        "NVML_PCIE_UTIL_TX_BYTES",
        "NVML_PCIE_UTIL_RX_BYTES",
        "nvmlTemperature_v1",
    ):
        assert getattr(fake_mod, name) == getattr(real, name), name
    for struct in ("c_nvmlUtilization_t", "c_nvmlMemory_t", "c_nvmlMemory_v2_t"):
        fake_fields = [f[0] for f in getattr(fake_mod, struct)._fields_]
        assert fake_fields == [f[0] for f in getattr(real, struct)._fields_], struct
    for bit, name in CLOCK_EVENT_REASONS:
        camel = "".join(part.capitalize() for part in name.split("_"))
        assert getattr(real, f"nvmlClocksEventReason{camel}") == bit, name
        assert getattr(real, f"nvmlClocksThrottleReason{camel}") == bit, name
        assert getattr(fake_mod, f"nvmlClocksEventReason{camel}") == bit, name


def test_cli_json_with_the_fake(fake, capsys) -> None:
    fake([gpu()])
    code = main(["sample", "--duration-s", "0.1", "--interval-ms", "10", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["available"] is True and out["gpus"][0]["metrics"]["util_gpu_pct"]["count"] >= 3
    assert "samples" not in out["gpus"][0]


def test_cli_table_with_a_lost_gpu_exits_1(fake, capsys) -> None:
    fake([gpu(), gpu(lost_after=2, errors={"nvmlDeviceGetPowerUsage": "NOT_SUPPORTED"})])
    code = main(["sample", "--duration-s", "0.1", "--interval-ms", "10", "--gpus", "0,1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "util_gpu_pct" in captured.out and "power_w: not supported" in captured.out
    assert "lost at" in captured.out and "lost during sampling" in captured.err


def test_cli_unavailable_json_exits_1(fake, capsys) -> None:
    fake(init_error="NO_PERMISSION")
    code = main(["sample", "--duration-s", "5", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["available"] is False
    assert captured.err.startswith("NVML unavailable: no permission")


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--gpus", "a,b"],
        ["sample", "--gpus", "-1"],
        ["sample", "--duration-s", "0"],
        ["sample", "--interval-ms", "0.5"],
        ["sample", "--warmup-s", "5", "--duration-s", "5"],
        ["sample", "--format", "csv"],
        [],
    ],
)
def test_cli_bad_flags_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_cli_unknown_gpu_exits_2(fake, capsys) -> None:
    fake([gpu()])
    with pytest.raises(SystemExit) as exc:
        cli.run(main, nvml_sampler.PROG, ["sample", "--gpus", "3"])
    assert exc.value.code == 2
    assert "GPU index 3 not found" in capsys.readouterr().err


def test_help_explains_units(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--help"])
    text = capsys.readouterr().out
    assert exc.value.code == 0
    for words in ("milliwatts", "KB/s", "MHz", "degrees Celsius", "bytes", "exit codes"):
        assert words in text, words
