"""Classification of real-format error texts (tests/watchdog/fixtures) and of exit signals."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.watchdog.catalogue import CATALOGUE
from toolkit.watchdog.classify import classify, repeated

FIXTURES = Path(__file__).with_name("fixtures")

EXPECTED = {
    "nccl_timeout.log": ("environment", "nccl-timeout", 1),
    "nccl_timeout_old.log": ("environment", "nccl-timeout", -6),
    "nccl_error.log": ("environment", "nccl-error", 1),
    "cuda_oom.log": ("resources", "cuda-oom", 1),
    "cuda_oom_old.log": ("resources", "cuda-oom", 1),
    "device_assert.log": ("code", "device-side-assert", 1),
    "size_mismatch.log": ("code", "state-dict-mismatch", 1),
    "xid_79.log": ("environment", "gpu-fallen-off-bus", -9),
    "fallen_off_bus.log": ("environment", "gpu-fallen-off-bus", 1),
    "ecc.log": ("environment", "ecc-error", 1),
    "xid_13.log": ("environment", "gpu-xid-app-fault", 1),
    "xid_74.log": ("environment", "gpu-xid", 1),
    "dataloader_killed.log": ("environment", "dataloader-killed", 1),
    "dataloader_signal.log": ("environment", "dataloader-killed", 1),
    "oom_killer.log": ("environment", "oom-killer", -9),
    "slurm_oom.log": ("environment", "oom-killer", 137),
    "preemption.log": ("environment", "preemption", -15),
    "disk_full.log": ("resources", "disk-full", 1),
    "nan_loss.log": ("numerical", "nan-loss", 1),
    "nan_loss_detr.log": ("numerical", "nan-loss", 1),
    "typeerror.log": ("code", "python-exception", 1),
    "attributeerror.log": ("code", "python-exception", 1),
    "oom_then_nccl.log": ("resources", "cuda-oom", 1),
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in FIXTURES.glob("*.log")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_classification(name):
    cls, subclass, rc = EXPECTED[name]
    diag = classify(rc, (FIXTURES / name).read_text())
    assert (diag.cls, diag.subclass) == (cls, subclass), diag
    assert diag.restart == (cls == "environment")
    assert diag.evidence and diag.meaning


def test_every_catalogue_entry_is_exercised_by_a_fixture():
    covered = {sub for _, sub, _ in EXPECTED.values()}
    assert {p.subclass for p in CATALOGUE} <= covered


@pytest.mark.parametrize(
    "rc, expected",
    [
        (-9, ("environment", "sigkill", True)),
        (137, ("environment", "sigkill", True)),
        (-15, ("environment", "sigterm", True)),
        (143, ("environment", "sigterm", True)),
        (0, ("success", "finished", False)),
        (3, ("unknown", "unexplained-exit", False)),
    ],
)
def test_exit_status_without_text(rc, expected):
    diag = classify(rc, "step=10 loss=1.0\n")
    assert (diag.cls, diag.subclass, diag.restart) == expected
    assert diag.step == 10


def test_unlisted_exception_is_code_traceback():
    text = 'Traceback (most recent call last):\n  File "x.py", line 1\nMyCustomError: boom\n'
    diag = classify(1, text)
    assert (diag.cls, diag.subclass, diag.restart) == ("code", "traceback", False)
    assert "MyCustomError: boom" in diag.evidence


def test_hang_flag_wins():
    diag = classify(-15, "anything", hung=True, hang_reason="idle 700 s")
    assert (diag.cls, diag.subclass, diag.restart) == ("environment", "hang", True)


def test_same_failure_at_same_step_twice_becomes_code():
    text = (FIXTURES / "nccl_timeout.log").read_text() + "\nstep=12\n"
    first = classify(1, "step=12 loss=1\n" + text)
    second = repeated(classify(1, "step=12 loss=1\n" + text), first)
    assert (second.cls, second.subclass, second.restart) == ("code", "repeated", False)
    later = classify(1, "step=14 loss=1\n" + text.replace("step=12", "step=14"))
    assert repeated(later, first).cls == "environment"  # a different step is a new fault


def test_old_handled_exception_does_not_hide_a_sigkill():
    text = "step=5 loss=1\nKeyError: 'optional_field' (handled, skipping sample)\nstep=6 loss=0.9\n"
    assert classify(-9, text).subclass == "sigkill"
    assert classify(1, text).subclass == "python-exception"
