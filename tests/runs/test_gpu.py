"""GPU pinning against the fake pynvml: two busy and two free GPUs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hardware.conftest import FAKES, device, load_fake_pynvml
from tests.runs.conftest import PY, cli, cli_json, wait_for
from toolkit.runs import control, db
from toolkit.runs.local import GpuPolicy

GIB = 1024**3
POLICY = GpuPolicy(samples=1, interval_s=0)
FAST = control.StartOptions(policy=POLICY)
SHOW_AND_SLEEP = (
    f"{PY} -c \"import os, time; print(os.environ['CUDA_VISIBLE_DEVICES'], "
    "os.environ['CUDA_DEVICE_ORDER'], flush=True); time.sleep(60)\""
)


def gpu(util: int, used_gib: float) -> dict:
    series = {
        "util_gpu_pct": [util],
        "util_memory_pct": [0],
        "memory_used_bytes": [int(used_gib * GIB)],
    }
    return device("NVIDIA H100 PCIe", 81559, 0x2331, series=series)


# GPU 0 busy (utilization), 1 free, 2 busy (memory), 3 free
MACHINE = [gpu(97, 2), gpu(0, 0.5), gpu(0, 40), gpu(1, 0.2)]


@pytest.fixture
def fake_machine(monkeypatch: pytest.MonkeyPatch) -> str:
    load_fake_pynvml(monkeypatch)
    scenario = json.dumps({"devices": MACHINE})
    monkeypatch.setenv("FAKE_PYNVML_SCENARIO", scenario)
    return scenario


def _log(run: db.Run) -> str:
    path = Path(run.log_path)
    wait_for(lambda: path.exists() and path.read_text().strip())
    return path.read_text()


def test_free_gpus_assigned_rest_queued(conn, fake_machine: str) -> None:
    for name in ("a", "b", "c"):
        db.create_run(conn, name=name, command=SHOW_AND_SLEEP, gpus=1)
    results = control.start_runs(conn, ["a", "b", "c"], FAST)
    try:
        assert [r.started for r in results] == [True, True, False]
        a, b, c = (db.get_run(conn, n) for n in "abc")
        assert sorted([a.gpus, b.gpus]) == [[1], [3]]
        assert c.status == "queued" and c.gpus == []
        assert c.note.startswith("waiting for 1 free GPU(s): 0 of 4 free")
        assert "GPU 0: utilization 97% > 10%" in c.note
        assert "GPU 1: assigned to a running run" in c.note
        assert "GPU 2: memory used" in c.note
        assert _log(a) == f"{a.gpus[0]} PCI_BUS_ID\n"
        # a finishes: its GPU goes to c
        control.cancel_run(conn, "a", grace_s=5)
        [again] = control.start_runs(conn, ["c"], FAST)
        assert again.started and db.get_run(conn, "c").gpus == a.gpus
    finally:
        for name in "abc":
            control.cancel_run(conn, name, grace_s=5)


def test_two_gpu_run_and_not_enough(conn, fake_machine: str) -> None:
    db.create_run(conn, name="pair", command=SHOW_AND_SLEEP, gpus=2)
    db.create_run(conn, name="trio", command=SHOW_AND_SLEEP, gpus=3)
    results = control.start_runs(conn, ["trio", "pair"], FAST)
    try:
        assert [r.started for r in results] == [False, True]
        assert "waiting for 3 free GPU(s): 2 of 4 free" in results[0].note
        pair = db.get_run(conn, "pair")
        assert pair.gpus == [1, 3] and _log(pair) == "1,3 PCI_BUS_ID\n"
    finally:
        control.cancel_run(conn, "pair", grace_s=5)


def test_wait_retries_until_a_gpu_frees(conn, fake_machine: str) -> None:
    db.create_run(conn, name="first", command=SHOW_AND_SLEEP, gpus=2)
    db.create_run(conn, name="second", command=SHOW_AND_SLEEP, gpus=1)
    control.start_runs(conn, ["first"], FAST)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            control.cancel_run(conn, "first", grace_s=5)

    options = control.StartOptions(policy=POLICY, wait=True, retry_delay_s=7)
    try:
        [result] = control.start_runs(conn, ["second"], options, sleep=sleep)
        assert result.started and sleeps == [7, 7]
        assert db.get_run(conn, "second").gpus == [3]  # least memory used wins
    finally:
        control.cancel_run(conn, "second", grace_s=5)


def test_wait_gives_up_after_max_wait(conn, fake_machine: str) -> None:
    db.create_run(conn, name="big", command="true", gpus=3)
    options = control.StartOptions(policy=POLICY, wait=True, retry_delay_s=0.01, max_wait_s=0.05)
    [result] = control.start_runs(conn, ["big"], options)
    assert not result.started and "gave up after --max-wait" in result.note
    assert db.get_run(conn, "big").status == "queued"


def test_no_nvml_leaves_gpu_runs_queued_cpu_runs_start(
    conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_fake_pynvml(monkeypatch)  # no scenario: no driver
    db.create_run(conn, name="g", command="true", gpus=1)
    db.create_run(conn, name="cpu", command="true")
    g, cpu = control.start_runs(conn, ["g", "cpu"], FAST)
    assert not g.started and g.status == "queued" and "NVML unavailable" in g.note
    assert cpu.started


def test_cli_pins_free_gpus(project: Path, fake_machine: str) -> None:
    env = {"PYTHONPATH": str(FAKES), "FAKE_PYNVML_SCENARIO": fake_machine}
    try:
        for name in ("x", "y", "z"):
            res = cli(
                "run",
                "create",
                "--name",
                name,
                "--gpus",
                "1",
                "--command",
                SHOW_AND_SLEEP,
                "--auto-start",
                "--samples",
                "1",
                cwd=project,
                env=env,
            )
            assert res.returncode == (1 if name == "z" else 0), res.stderr
        runs = {r["name"]: r for r in cli_json("run", "list", cwd=project, env=env)}
        assert sorted(runs["x"]["gpus"] + runs["y"]["gpus"]) == [1, 3]
        assert runs["z"]["status"] == "queued" and "waiting for 1 free GPU" in runs["z"]["note"]
    finally:
        for name in ("x", "y", "z"):
            cli("run", "cancel", name, "--grace", "5", cwd=project, env=env)
