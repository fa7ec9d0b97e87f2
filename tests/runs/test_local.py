"""Local launcher with real processes: grid of 4, exit codes, logs, kills, cancel, metrics."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.runs.conftest import PY, cli, cli_json, wait_for
from toolkit.runs import control, db, local

SCRIPT = """\
import json, os, sys, time
lr, bs = float(sys.argv[1]), int(sys.argv[2])
print(f"start lr={lr} bs={bs}", flush=True)
with open(os.environ["LABCOAT_METRICS_FILE"], "w") as fh:
    json.dump({"loss": lr * bs}, fh)
sys.exit(3 if bs == 16 and lr > 2e-4 else 0)
"""


def _settled(project: Path, count: int):
    def check():
        runs = cli_json("run", "list", cwd=project)
        return runs if all(r["status"] in ("succeeded", "failed") for r in runs) else None

    return wait_for(check, timeout=60, step=0.2)


def test_grid_of_four_runs_end_to_end(project: Path) -> None:
    (project / "train.py").write_text(SCRIPT)
    res = cli(
        "sweep",
        "grid",
        "--name",
        "lrbs",
        "--goal",
        "pick lr",
        "--param",
        "lr=1e-4,3e-4",
        "--param",
        "bs=8,16",
        "--command",
        f"{PY} train.py {{lr}} {{bs}}",
        "--auto-start",
        cwd=project,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("yes") == 4
    runs = _settled(project, 4)
    by_name = {r["name"]: r for r in runs}
    assert set(by_name) == {
        "lrbs-lr_1e-4-bs_8",
        "lrbs-lr_1e-4-bs_16",
        "lrbs-lr_3e-4-bs_8",
        "lrbs-lr_3e-4-bs_16",
    }
    failed = by_name["lrbs-lr_3e-4-bs_16"]
    assert failed["status"] == "failed" and failed["exit_code"] == 3
    assert failed["note"] == "exited with code 3"
    ok = by_name["lrbs-lr_1e-4-bs_8"]
    assert ok["status"] == "succeeded" and ok["exit_code"] == 0
    assert ok["metrics"] == {"loss": 1e-4 * 8}
    assert ok["started"] <= ok["ended"] and ok["host"] and ok["pid"]
    assert ok["gpus"] == [] and ok["backend"] == "local"
    assert Path(ok["log_path"]) == project / ".labcoat" / "runs" / ok["name"] / "output.log"
    logs = cli_json("run", "logs", "lrbs-lr_3e-4-bs_16", cwd=project)
    assert logs["text"] == "start lr=0.0003 bs=16\n"
    text = cli("run", "logs", "lrbs-lr_1e-4-bs_8", cwd=project)
    assert text.returncode == 0 and text.stdout == "start lr=0.0001 bs=8\n"
    show = cli_json("sweep", "show", "--name", "lrbs", cwd=project)
    assert show["counts"] == {"succeeded": 3, "failed": 1}
    assert show["sweep"]["params"] == {"lr": ["1e-4", "3e-4"], "bs": ["8", "16"]}
    failed_only = cli_json("run", "list", "--status", "failed", cwd=project)
    assert [r["name"] for r in failed_only] == ["lrbs-lr_3e-4-bs_16"]
    table = cli("run", "list", "--sweep", "lrbs", cwd=project)
    assert "STATUS" in table.stdout and "exited with code 3" in table.stdout


def test_run_create_then_start_and_no_gpu_flags(project: Path) -> None:
    res = cli(
        "run",
        "create",
        "--name",
        "env",
        "--env",
        "FOO=bar",
        "--command",
        f"{PY} -c \"import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ['FOO'], os.getcwd())\"",
        cwd=project,
    )
    assert res.returncode == 0, res.stderr
    assert cli_json("run", "show", "env", cwd=project)["status"] == "queued"
    started = cli_json("run", "start", "env", cwd=project)
    assert started[0]["started"] is True
    wait_for(lambda: cli_json("run", "show", "env", cwd=project)["status"] == "succeeded")
    assert cli_json("run", "logs", "env", cwd=project)["text"] == f"None bar {project}\n"
    again = cli("run", "start", "env", cwd=project)
    assert again.returncode == 1 and "already succeeded" in again.stdout


def _start(conn, name: str, command: str) -> db.Run:
    db.create_run(conn, name=name, command=command)
    [result] = control.start_runs(conn, [name])
    assert result.started, result.note
    return db.get_run(conn, name)


def test_killed_child_reconciled_with_signal(conn) -> None:
    run = _start(
        conn, "victim", f"{PY} -c \"import time; print('up', flush=True); time.sleep(60)\""
    )
    log = Path(run.log_path)
    wait_for(lambda: log.exists() and "up" in log.read_text())
    # kill the training process only: the wrapper survives and records how it died
    children = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: control.reconcile_all(conn) or db.get_run(conn, "victim").status != "running")
    run = db.get_run(conn, "victim")
    assert run.status == "failed" and run.note in ("killed by SIGKILL", "exited with code 137")
    assert run.exit_code in (-9, 137)


def test_killed_group_reconciled_as_vanished(project: Path, conn) -> None:
    run = _start(conn, "gone", f'{PY} -c "import time; time.sleep(60)"')
    os.killpg(run.pid, signal.SIGKILL)
    wait_for(lambda: not local.pid_alive(run.pid))
    # any command reconciles: here the CLI in another process
    shown = cli_json("run", "show", "gone", cwd=project)
    assert shown["status"] == "failed" and shown["exit_code"] is None
    assert shown["note"].startswith("process vanished: pid")


def test_killed_wrapper_run_goes_on_as_running_and_cancel_stops_its_group(
    project: Path, conn
) -> None:
    marker = project / "done.txt"
    cmd = f"{PY} -c \"import time; time.sleep(2.5); open('done.txt', 'w').write('x'); time.sleep(60)\""
    run = _start(conn, "orphan", cmd)
    wait_for(lambda: len(local.group_pids(run)) >= 2)
    os.kill(run.pid, signal.SIGKILL)  # the recorded pid only: its command runs on
    wait_for(lambda: not local.pid_alive(run.pid))
    shown = cli_json("run", "show", "orphan", cwd=project)
    assert shown["status"] == "running" and "process group runs on" in shown["note"]
    wait_for(marker.exists, timeout=30)  # the job really is still working
    res = cli("run", "cancel", "orphan", "--grace", "2", cwd=project)
    assert res.returncode == 0, res.stderr + res.stdout
    assert db.get_run(conn, "orphan").status == "cancelled"
    assert local.group_pids(run) == []


def test_cancel_running_and_queued(project: Path, conn) -> None:
    run = _start(conn, "long", f'{PY} -c "import time; time.sleep(60)"')
    db.create_run(conn, name="waiting", command="true")
    t0 = time.monotonic()
    res = cli("run", "cancel", "long", "--grace", "5", cwd=project)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 < 10
    after = db.get_run(conn, "long")
    assert after.status == "cancelled" and "SIGTERM" in after.note
    assert not local.pid_alive(run.pid)
    assert cli_json("run", "cancel", "waiting", cwd=project)["run"]["status"] == "cancelled"
    again = cli("run", "cancel", "long", cwd=project)
    assert again.returncode == 1 and "nothing to cancel" in again.stdout


def test_logs_follow_until_end(project: Path) -> None:
    cmd = f'{PY} -c "import time\nfor i in range(3): print(i, flush=True); time.sleep(0.3)"'
    res = cli("run", "create", "--name", "f", "--command", cmd, "--auto-start", cwd=project)
    assert res.returncode == 0, res.stderr
    follow = cli("run", "logs", "f", "--follow", cwd=project, timeout=30)
    assert follow.returncode == 0 and follow.stdout == "0\n1\n2\n"
    assert cli_json("run", "show", "f", cwd=project)["status"] == "succeeded"


def test_bad_workdir_fails_cleanly(conn, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    db.create_run(conn, name="w", command="true", workdir=str(missing))
    [result] = control.start_runs(conn, ["w"])
    assert not result.started and result.status == "failed" and "could not start" in result.note


def test_exit_code_file_is_json(conn) -> None:
    run = _start(conn, "quick", "exit 7")
    wait_for(lambda: control.reconcile_all(conn))
    folder = Path(run.log_path).parent
    assert json.loads((folder / "exit_code.json").read_text())["exit_code"] == 7
    assert db.get_run(conn, "quick").exit_code == 7


def _crash_after_spawn(conn, name: str) -> None:
    """A launcher that dies after spawning the run but before its transaction commits."""

    class Crash(Exception):
        pass

    run = db.get_run(conn, name)
    try:
        with db.transaction(conn):
            ok, _ = local.start(conn, run, control.StartOptions().policy, local.pick_gpus)
            assert ok
            raise Crash
    except Crash:
        pass
    assert db.get_run(conn, name).status == "queued"  # the registry never saw the start


def test_start_lost_by_a_crashed_launcher_is_adopted_not_run_twice(conn, tmp_path: Path) -> None:
    marks = tmp_path / "launches.txt"
    db.create_run(conn, name="once", command=f"echo x >> {marks}; sleep 30")
    _crash_after_spawn(conn, "once")
    wait_for(lambda: marks.exists())
    [result] = control.start_runs(conn, ["once"])
    assert result.started and result.note.startswith("adopted pid"), result.note
    run = db.get_run(conn, "once")
    assert run.status == "running" and local.pid_alive(run.pid)
    time.sleep(0.5)
    assert marks.read_text() == "x\n"  # launched once, not twice
    os.killpg(run.pid, signal.SIGKILL)


def test_lost_start_that_already_finished_is_recorded_with_its_exit_code(conn) -> None:
    db.create_run(conn, name="quick", command="exit 4")
    _crash_after_spawn(conn, "quick")
    exit_file = local.run_paths(conn, "quick")[2]
    wait_for(lambda: exit_file.exists())
    [result] = control.start_runs(conn, ["quick"])
    assert result.note.startswith("adopted pid")
    control.reconcile_all(conn)
    run = db.get_run(conn, "quick")
    assert run.status == "failed" and run.exit_code == 4
