"""The main job runs both levels of the pyramid: L0 (static) on the training script, then L1."""

from tests.profiling.test_l0_runner import SCRIPTS, run_json, status
from toolkit.profiling.validator import runner as l0_runner
from toolkit.profiling.validator.l0_static import entry_source

BUGGY = str(SCRIPTS / "script_no_zero_grad.py")


def test_l0_error_stops_before_training(capsys):
    code, r = run_json(capsys, "--script", BUGGY)
    assert code == 1 and r["verdict"] == "FAIL"
    assert status(r, "L0 static check") == "fail" and status(r, "training") == "skip"
    assert r["training"] is None
    assert [f["code"] for f in r["static"]["findings"]] == ["LC101"]


def test_l0_continue_trains_anyway_and_keeps_the_finding(capsys):
    code, r = run_json(capsys, "--script", BUGGY, "--steps", "10", "--l0-continue")
    assert r["training"]["steps"] == 10
    assert status(r, "L0 static check") == "fail" and code == 1  # the verdict still shows L0


def test_skip_l0(capsys):
    code, r = run_json(capsys, "--script", BUGGY, "--steps", "10", "--skip-l0")
    assert r["static"] is None and "L0 static check" not in {c["name"] for c in r["checks"]}


def test_clean_entry_passes_l0_and_names_its_file(capsys):
    code, r = run_json(
        capsys, "--entry", "tests.profiling.fixtures.entries:healthy", "--steps", "20"
    )
    assert code == 0 and status(r, "L0 static check") == "pass"
    assert r["static"]["files_checked"] == 1
    assert entry_source("tests.profiling.fixtures.entries:healthy").name == "entries.py"
    assert entry_source("no_such_module_xyz:f") is None


def test_table_lists_l0_findings(capsys):
    l0_runner.main(["--script", BUGGY])
    out = capsys.readouterr().out
    assert "L0 static findings:" in out and "LC101" in out
