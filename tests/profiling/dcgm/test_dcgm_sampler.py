"""Live sampling through the fake ``dcgmi`` (tests/fakes/bin/dcgmi) put first on PATH."""

from __future__ import annotations

import time

import pytest

from tests.profiling.dcgm.conftest import FakeDcgmi
from toolkit.errors import InputError
from toolkit.profiling.instruments.dcgm_profiler import DcgmSampler, dmon_command, render


def wait_until_exited(sampler: DcgmSampler, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while sampler.running and time.monotonic() < deadline:
        time.sleep(0.01)


def test_command_passes_the_interval_in_milliseconds() -> None:
    assert dmon_command("dcgmi", (1001, 1004), 100, gpus=(0, 1), count=5) == [
        "dcgmi", "dmon", "-e", "1001,1004", "-d", "100", "-i", "0,1", "-c", "5",
    ]  # fmt: skip


def test_live_sampling_stops_with_sigint_and_summarizes(fake_dcgmi: FakeDcgmi) -> None:
    sampler = DcgmSampler(interval_ms=20).start()
    time.sleep(0.5)
    result = sampler.stop()
    assert fake_dcgmi.calls() == [["dmon", "-e", "1001,1002,1004,1005", "-d", "20"]]
    assert result.available and result.measured, result.reason
    assert result.stopped_by_signal  # the fake printed dcgmi's trailer after SIGINT
    assert result.timestamps == "wall clock"
    # -d 20 is 20 ms: about 25 ticks in 0.5 s (with -d read as seconds there would be one)
    assert 8 <= result.ticks_total <= 30
    assert [e.entity for e in result.entities] == ["GPU 0", "GPU 1"]
    tca = result.tca_mean_ratio()
    assert 0.68 <= tca["GPU 0"] <= 0.72 and 0.66 <= tca["GPU 1"] <= 0.70
    first_tick_na = result.field_summary("GPU 0", 1004)
    assert first_tick_na.not_available == 1  # DCGM's N/A on the first tick
    assert result.command[1:] == ["dmon", "-e", "1001,1002,1004,1005", "-d", "20"]
    assert "TCA mean" in render(result)


def test_live_warmup_drops_early_ticks_by_wall_clock(fake_dcgmi: FakeDcgmi) -> None:
    with DcgmSampler(interval_ms=20, warmup_s=0.25) as sampler:
        time.sleep(0.5)
    result = sampler.stop()
    assert result.available
    assert 0 < result.ticks_after_warmup < result.ticks_total
    assert result.field_summary("GPU 0", 1004).not_available == 0  # the N/A tick was early


def test_count_and_gpu_ids_reach_dcgmi(fake_dcgmi: FakeDcgmi) -> None:
    sampler = DcgmSampler(fields=[1004], interval_ms=5, gpus=[1], count=3).start()
    wait_until_exited(sampler)
    result = sampler.stop()
    assert fake_dcgmi.calls() == [["dmon", "-e", "1004", "-d", "5", "-i", "1", "-c", "3"]]
    assert result.available and not result.stopped_by_signal
    assert result.ticks_total == 3
    assert [e.entity for e in result.entities] == ["GPU 1"]
    assert [f.short_name for f in result.entities[0].fields] == ["TENSO"]


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("not_supported", "-6: Feature not supported"),
        ("no_permission", "profiling not permitted"),
        ("module_not_loaded", "profiling module is not loaded"),
        ("profiling_not_supported", "profiling is not supported on this GPU"),
        ("host_engine_down", "cannot connect to the DCGM host engine"),
    ],
)
def test_dcgm_errors_give_unavailable_with_the_reason(
    fake_dcgmi: FakeDcgmi, mode: str, words: str
) -> None:
    fake_dcgmi.mode(mode)
    sampler = DcgmSampler(interval_ms=20).start()
    wait_until_exited(sampler)
    assert sampler.early_failure() is not None  # dcgmi exited at once, with an error status
    result = sampler.stop()
    assert not result.available and not result.measured
    assert words in result.reason
    assert result.entities == []
    assert render(result) == f"DCGM unavailable: {result.reason}; TCA not measured"


def test_missing_dcgmi_is_unavailable_without_raising(no_dcgmi: None) -> None:
    started = time.monotonic()
    sampler = DcgmSampler().start()
    result = sampler.stop()
    assert time.monotonic() - started < 1.0
    assert not result.available
    assert "dcgmi not found on PATH" in result.reason
    assert sampler.early_failure() == result.reason


def test_stop_is_idempotent_and_start_is_once(fake_dcgmi: FakeDcgmi) -> None:
    sampler = DcgmSampler(interval_ms=10)
    never_started = DcgmSampler().stop()
    assert not never_started.available and "never started" in never_started.reason
    sampler.start()
    sampler.start()
    time.sleep(0.1)
    first = sampler.stop()
    assert sampler.stop() is first
    assert len(fake_dcgmi.calls()) == 1
    assert not sampler.running


def test_dcgmi_ignoring_sigint_is_terminated(fake_dcgmi: FakeDcgmi) -> None:
    fake_dcgmi.mode("ignore_sigint")
    sampler = DcgmSampler(interval_ms=10, stop_grace_s=0.2).start()
    time.sleep(0.15)
    started = time.monotonic()
    result = sampler.stop()
    assert time.monotonic() - started < 2.0
    assert not sampler.running
    assert result.available and not result.stopped_by_signal  # SIGTERM: no trailer


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval_ms": 0}, "whole milliseconds"),
        ({"interval_ms": 0.5}, "whole milliseconds"),
        ({"fields": []}, "positive DCGM field ids"),
        ({"gpus": [-1]}, "GPU ids"),
        ({"warmup_s": -1.0}, "warmup_s"),
        ({"count": 0}, "count"),
    ],
)
def test_bad_arguments_are_input_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        DcgmSampler(**kwargs)
