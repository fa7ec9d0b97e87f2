"""``python -m toolkit.profiling.dcgm_profiler`` as a user runs it: output and exit codes."""

from __future__ import annotations

import json

import pytest

from tests.profiling.dcgm.conftest import HERE, PROG, FakeDcgmi, run_cli


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()[-1:]
    return line


def test_parse_json_has_means_ids_and_names() -> None:
    result = run_cli("parse", str(HERE / "dmon_dcgm4_2gpu.txt"), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["available"] is True and data["ticks_total"] == 20
    gpu0 = data["entities"][0]
    assert gpu0["entity"] == "GPU 0"
    tensor = next(f for f in gpu0["fields"] if f["field_id"] == 1004)
    assert tensor["short_name"] == "TENSO" and tensor["long_name"] == "tensor_active"
    assert tensor["samples"] == 19 and tensor["not_available"] == 1
    assert tensor["mean"] == pytest.approx(0.6977368421052632, abs=1e-15)


def test_parse_table_with_warmup() -> None:
    result = run_cli(
        "parse", str(HERE / "dmon_dcgm4_2gpu.txt"), "--interval-ms", "100", "--warmup-s", "0.5"
    )
    assert result.returncode == 0, result.stderr
    assert "20 ticks at 100 ms, 15 after 0.5 s warm-up" in result.stdout
    assert "TCA mean (field 1004 TENSO" in result.stdout


def test_parse_missing_file_exits_2() -> None:
    result = run_cli("parse", str(HERE / "no_such_file.txt"))
    assert result.returncode == 2
    assert "FILE:" in one_error_line(result.stderr) and "missing" in result.stderr


def test_parse_file_without_rows_exits_1_with_a_clear_message() -> None:
    path = HERE / "dmon_header_only.txt"
    result = run_cli("parse", str(path))
    assert result.returncode == 1
    assert result.stdout.startswith(f"DCGM unavailable: {path}: dcgmi printed its header but no")
    assert result.stdout.strip().endswith("; TCA not measured")
    assert "Traceback" not in result.stderr


def test_parse_percent_file_exits_2_naming_the_line() -> None:
    result = run_cli("parse", str(HERE / "dmon_percent.txt"))
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith(f"{PROG}: error: line 3: GRACT = 91.2 is outside 0..1")


def test_sample_through_the_fake(fake_dcgmi: FakeDcgmi) -> None:
    result = run_cli(
        "sample", "--duration-s", "0.4", "--interval-ms", "20", "--warmup-s", "0",
        "--gpus", "0,1", "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert fake_dcgmi.calls() == [["dmon", "-e", "1001,1002,1004,1005", "-d", "20", "-i", "0,1"]]
    data = json.loads(result.stdout)
    assert data["available"] and data["stopped_by_signal"] and data["timestamps"] == "wall clock"
    assert [e["entity"] for e in data["entities"]] == ["GPU 0", "GPU 1"]


@pytest.mark.parametrize("mode", ["not_supported", "no_permission", "host_engine_down"])
def test_sample_unavailable_exits_1_with_the_message(fake_dcgmi: FakeDcgmi, mode: str) -> None:
    fake_dcgmi.mode(mode)
    result = run_cli("sample", "--duration-s", "5", "--warmup-s", "0")
    assert result.returncode == 1
    assert result.stdout.startswith("DCGM unavailable: ")
    assert result.stdout.strip().endswith("; TCA not measured")
    assert "Traceback" not in result.stderr


def test_sample_without_dcgmi_exits_1(no_dcgmi: None) -> None:
    result = run_cli("sample", "--duration-s", "5", "--warmup-s", "1", "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["available"] is False and "dcgmi not found on PATH" in data["reason"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--duration-s", "2", "--warmup-s", "5"], "--warmup-s 5 must be shorter than"),
        (["--interval-ms", "0.5"], "--interval-ms expects a positive integer"),
        (["--fields", "1001,TENSO"], "--fields expects comma-separated integers"),
        (["--warmup-s", "-1"], "--warmup-s expects a number >= 0"),
    ],
)
def test_sample_usage_errors_exit_2(no_dcgmi: None, args: list[str], words: str) -> None:
    result = run_cli("sample", *args)
    assert result.returncode == 2
    assert words in one_error_line(result.stderr)


def test_parse_a_file_that_is_not_dmon_output_exits_2(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a dcgmi capture\n")
    result = run_cli("parse", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"FILE {path}: not `dcgmi dmon` output" in one_error_line(result.stderr)
