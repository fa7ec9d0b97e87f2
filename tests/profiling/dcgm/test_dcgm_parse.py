"""Parsing saved ``dcgmi dmon`` captures: layouts of DCGM 2.x/3.x/4.x, N/A, MIG, errors.

The fixtures follow the format written by NVIDIA/DCGM ``dcgmi/DeviceMonitor.cpp``:
``dmon_dcgm4_2gpu.txt`` the 4.0-4.5 layout (entity column 11, field columns 13), header again
after the 15th tick, first tick all N/A; ``dmon_dcgm3_gpu_i.txt`` the 3.x layout (entity
column 10, "stopped do to" trailer) with GPU-I entities as in NVIDIA/DCGM issue #151;
``dmon_dcgm2_old.txt`` the right-aligned 2.x layout; ``dmon_not_supported.txt`` the capture in
KempnerInstitute/kempnerpulse issue #13 (DCGM 3.3.8).
"""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import pytest

from tests.profiling.dcgm.conftest import fixture_text
from toolkit.errors import InputError
from toolkit.profiling.instruments.dcgm_dmon import (
    classify_error_line,
    code_from_exit_status,
    read_dmon,
)
from toolkit.profiling.instruments.dcgm_fields import DEFAULT_FIELD_IDS, FIELDS, field_by_short_name
from toolkit.profiling.instruments.dcgm_profiler import DcgmResult, parse_dmon, render

# The values of dmon_dcgm4_2gpu.txt, ticks 1..19 (tick 0 is all N/A), as printed.
GPU0_TENSO = [
    0.712, 0.666, 0.706, 0.685, 0.665, 0.724, 0.738, 0.713, 0.696, 0.739,
    0.669, 0.696, 0.731, 0.681, 0.709, 0.692, 0.664, 0.672, 0.699,
]  # fmt: skip
GPU1_TENSO = [
    0.635, 0.640, 0.699, 0.681, 0.655, 0.672, 0.642, 0.655, 0.683, 0.683,
    0.650, 0.699, 0.649, 0.675, 0.692, 0.635, 0.659, 0.640, 0.651,
]  # fmt: skip
GPU0_GRACT = [
    0.936, 0.913, 0.960, 0.922, 0.954, 0.946, 0.968, 0.949, 0.958, 0.966,
    0.947, 0.980, 0.943, 0.949, 0.965, 0.974, 0.923, 0.980, 0.989,
]  # fmt: skip
# GPU 1 DRAMA: N/A at tick 0 and tick 7.
GPU1_DRAMA = [
    0.321, 0.298, 0.303, 0.310, 0.327, 0.350, 0.336, 0.285, 0.282,
    0.311, 0.302, 0.299, 0.356, 0.350, 0.297, 0.282, 0.348, 0.346,
]  # fmt: skip


def exact_mean(values: list[float]) -> float:
    """Mean computed apart from the parser: exact rational sum of the floats, rounded once."""
    return float(sum((Fraction(v) for v in values), Fraction(0)) / len(values))


@pytest.fixture(scope="module")
def two_gpus() -> DcgmResult:
    return parse_dmon(fixture_text("dmon_dcgm4_2gpu.txt"), interval_ms=100)


def test_field_table_maps_ids_short_and_long_names() -> None:
    assert DEFAULT_FIELD_IDS == (1001, 1002, 1004, 1005)
    tensor = FIELDS[1004]
    assert (tensor.short_name, tensor.long_name, tensor.is_ratio) == (
        "TENSO",
        "tensor_active",
        True,
    )
    assert field_by_short_name("GRACT").field_id == 1001
    assert not FIELDS[1009].is_ratio  # PCIe bytes


def test_saved_file_means_are_exactly_the_means_of_its_rows(two_gpus: DcgmResult) -> None:
    for entity, field_id, values in [
        ("GPU 0", 1004, GPU0_TENSO),
        ("GPU 1", 1004, GPU1_TENSO),
        ("GPU 0", 1001, GPU0_GRACT),
        ("GPU 1", 1005, GPU1_DRAMA),
    ]:
        summary = two_gpus.field_summary(entity, field_id)
        assert summary is not None
        assert summary.mean == exact_mean(values)
        assert summary.p50 == statistics.median(values)
        assert (summary.min, summary.max) == (min(values), max(values))
        assert summary.samples == len(values)
    assert two_gpus.tca_mean_ratio() == {
        "GPU 0": exact_mean(GPU0_TENSO),
        "GPU 1": exact_mean(GPU1_TENSO),
    }
    assert math.isclose(two_gpus.tca_mean_ratio()["GPU 0"], 0.6977368421052632, abs_tol=1e-15)


def test_na_is_excluded_and_counted(two_gpus: DcgmResult) -> None:
    tensor = two_gpus.field_summary("GPU 0", 1004)
    drama = two_gpus.field_summary("GPU 1", 1005)
    assert (tensor.samples, tensor.not_available) == (19, 1)
    assert (drama.samples, drama.not_available) == (18, 2)


def test_header_reprint_loses_no_rows_and_ids_names_are_shown(two_gpus: DcgmResult) -> None:
    assert two_gpus.available and two_gpus.stopped_by_signal
    assert two_gpus.ticks_total == 20 and two_gpus.ticks_after_warmup == 20
    assert [e.entity for e in two_gpus.entities] == ["GPU 0", "GPU 1"]
    for entity in two_gpus.entities:
        names = [(f.field_id, f.short_name, f.long_name) for f in entity.fields]
        assert names == [
            (1001, "GRACT", "gr_engine_active"),
            (1002, "SMACT", "sm_active"),
            (1004, "TENSO", "tensor_active"),
            (1005, "DRAMA", "dram_active"),
        ]
        assert all(f.samples + f.not_available == 20 for f in entity.fields)
    assert two_gpus.span_s == pytest.approx(1.9)
    assert two_gpus.warnings == []


def test_warmup_is_trimmed_by_time_not_by_row_count() -> None:
    text = fixture_text("dmon_dcgm4_2gpu.txt")
    at_100ms = parse_dmon(text, interval_ms=100, warmup_s=0.5)  # ticks 0..4 dropped
    at_50ms = parse_dmon(text, interval_ms=50, warmup_s=0.5)  # ticks 0..9 dropped
    assert at_100ms.ticks_after_warmup == 15
    assert at_50ms.ticks_after_warmup == 10
    assert at_100ms.field_summary("GPU 0", 1004).mean == exact_mean(GPU0_TENSO[4:])
    assert at_50ms.field_summary("GPU 0", 1004).mean == exact_mean(GPU0_TENSO[9:])
    assert at_100ms.field_summary("GPU 0", 1004).not_available == 0


def test_warmup_longer_than_the_capture_measures_nothing() -> None:
    result = parse_dmon(fixture_text("dmon_dcgm4_2gpu.txt"), interval_ms=100, warmup_s=60)
    assert result.available and not result.measured
    tensor = result.field_summary("GPU 0", 1004)
    assert tensor.mean is None and tensor.samples == 0
    assert "warm-up" in tensor.note


def test_mig_entities_and_blank_cells_are_read_by_column_position() -> None:
    result = parse_dmon(fixture_text("dmon_dcgm4_mig_blank.txt"), interval_ms=1000)
    assert [e.entity for e in result.entities] == ["GPU 0", "GPU-I 1", "GPU-I 2"]
    assert result.ticks_total == 3
    pcie = result.field_summary("GPU-I 1", 1009)
    assert (pcie.samples, pcie.not_available, pcie.mean, pcie.unit) == (0, 3, None, "B/s")
    assert result.field_summary("GPU 0", 1009).mean == exact_mean(
        [1203456789.0, 1303456789.0, 1403456789.0]
    )
    assert result.tca_mean_ratio() == {
        "GPU 0": exact_mean([0.4, 0.6, 0.8]),
        "GPU-I 1": exact_mean([0.5, 0.7, 0.9]),
        "GPU-I 2": exact_mean([0.1, 0.3]),
    }
    assert result.field_summary("GPU-I 2", 1004).not_available == 1


def test_dcgm3_layout_with_its_trailer_typo() -> None:
    result = parse_dmon(fixture_text("dmon_dcgm3_gpu_i.txt"), interval_ms=100)
    assert result.stopped_by_signal
    assert result.tca_mean_ratio() == {
        "GPU-I 21": exact_mean([0.0, 0.04]),
        "GPU-I 29": exact_mean([0.468, 0.465]),
    }
    assert result.field_summary("GPU-I 29", 1003).short_name == "SMOCC"


def test_dcgm2_right_aligned_layout_with_blank_line_before_reprint() -> None:
    result = parse_dmon(fixture_text("dmon_dcgm2_old.txt"), interval_ms=100)
    assert result.stopped_by_signal and result.ticks_total == 16
    values = [0.05, 0.15, 0.25] * 5 + [0.05]
    assert result.tca_mean_ratio() == {"GPU 0": exact_mean(values)}


def test_percent_values_are_rejected_naming_the_line() -> None:
    with pytest.raises(InputError, match=r"line 3: GRACT = 91\.2 is outside 0\.\.1.*percent"):
        parse_dmon(fixture_text("dmon_percent.txt"), interval_ms=100)


def test_slightly_above_one_is_kept_and_warned() -> None:
    text = "#Entity    TENSO\nID\nGPU 0      1.002\nGPU 0      0.998\n"
    result = parse_dmon(text, interval_ms=100)
    assert result.tca_mean_ratio() == {"GPU 0": exact_mean([1.002, 0.998])}
    assert any("(1.0, 1.05]" in w for w in result.warnings)


def test_saved_watch_error_is_unavailable_with_the_reason() -> None:
    result = parse_dmon(fixture_text("dmon_not_supported.txt"), interval_ms=100)
    assert not result.available and not result.measured
    assert "not supported on this GPU" in result.reason
    assert "Result: -6: Feature not supported" in result.reason
    assert render(result).startswith("DCGM unavailable: a requested field is not supported")
    assert render(result).endswith("; TCA not measured")


@pytest.mark.parametrize(
    "text",
    ["", "hello\nworld\n", fixture_text("dmon_header_only.txt")],
    ids=["empty", "not-dmon", "header-only"],
)
def test_no_data_rows_is_unavailable(text: str) -> None:
    result = parse_dmon(text, interval_ms=100)
    assert not result.available and result.entities == []
    assert "data row" in result.reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GPU 0  0.5\n", "line 1: data row before any '#Entity' header"),
        ("#Entity TENSO\nID\nGPU 0  0.5  0.6\n", "line 3: expected 1 values"),
        ("#Entity TENSO\nID\nGPU 0  abc\n", "line 3: TENSO value 'abc' is not a number"),
        ("#Entity TENSO\nID\nGPU 0  nan\n", "line 3: TENSO value 'nan'"),
        ("#Entity TENSO\nGPU 0  0.5\n#Entity GRACT\n", "line 3: header columns changed"),
    ],
)
def test_malformed_input_names_the_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_dmon(text, interval_ms=100)


def test_ticks_follow_entity_repeats_and_header_reprints() -> None:
    text = (
        "#Entity    TENSO\nID\n"
        "GPU 0      0.1\nGPU 1      0.2\n"  # tick 0
        "GPU 0      0.3\n"  # tick 1 (GPU 1 missing)
        "GPU 0      0.5\nGPU 1      0.6\n"  # tick 2
        "#Entity    TENSO\nID\n"
        "GPU 1      0.8\n"  # tick 3: the reprint ends tick 2
    )
    dmon = read_dmon(text.splitlines())
    assert [r.tick for r in dmon.rows] == [0, 0, 1, 2, 2, 3]
    assert dmon.header_count == 2


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        ("Error setting watches. Result: -6: Feature not supported", -6, "not supported"),
        (
            "Error setting watches. Result: -29: Unable to watch one or more of the requested "
            "fields because doing so requires the host engine to be running as root.",
            -29,
            "not permitted",
        ),
        (
            "Error setting watches. Result: -33: This request is serviced by a module of DCGM "
            "that is not currently loaded",
            -33,
            "module is not loaded",
        ),
        (
            "Error setting watches. Result: The third-party Profiling module returned an "
            "unrecoverable error",  # DCGM 2.x: no code in the message
            -37,
            "unrecoverable",
        ),
        (
            "Error: Unable to connect to host engine. Host engine connection invalid/disconnected.",
            -21,
            "host engine",
        ),
        (
            "Error: unable to establish a connection to the specified host: localhost",
            -21,
            "nv-hostengine",
        ),
    ],
)
def test_real_error_lines_map_to_clear_reasons(line: str, code: int, words: str) -> None:
    error = classify_error_line(line)
    assert error is not None
    assert error.code == code
    assert words in error.reason


def test_exit_status_is_the_dcgm_code_modulo_256() -> None:
    assert code_from_exit_status(250) == -6
    assert code_from_exit_status(227) == -29
    assert code_from_exit_status(143) is None  # SIGTERM
    assert code_from_exit_status(0) is None


def test_table_shows_ids_names_and_tca(two_gpus: DcgmResult) -> None:
    text = render(two_gpus)
    assert "1004   TENSO  tensor_active" in text
    assert "TCA mean (field 1004 TENSO" in text and "GPU 0 0.6977" in text
    assert "timestamps: row index x interval" in text
