"""``toolkit.hardware.launch`` and ``python -m toolkit.hardware launch``: generated text per env."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.hardware.conftest import device, run_cli, scenario
from toolkit.errors import InputError
from toolkit.hardware.detect import Environment, GpuInfo, Partition, SlurmInfo, gres_gpus
from toolkit.hardware.launch import (
    LaunchRequest,
    build_launch,
    resolve_env,
    time_limit_seconds,
    torchrun_command,
)

BASH = shutil.which("bash")


def bash_syntax_ok(text: str) -> None:
    assert BASH is not None
    result = subprocess.run([BASH, "-n"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def slurm_2x8(**extra: object) -> LaunchRequest:
    fields = {
        "env": "slurm",
        "script": "train.py",
        "script_args": ("--lr", "1e-4", "--run name"),
        "nodes": 2,
        "gpus_per_node": 8,
        "partition": "gpu",
        "job_name": "llama-lora",
        "time": "04:00:00",
        **extra,
    }
    return LaunchRequest(**fields)  # type: ignore[arg-type]


def test_slurm_multi_node_script_has_every_required_line() -> None:
    launch = build_launch(slurm_2x8(cpus_per_task=32))
    script = launch.script
    assert script is not None and script.startswith("#!/bin/bash\n")
    for line in (
        "#SBATCH --job-name=llama-lora",
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gres=gpu:8",
        "#SBATCH --cpus-per-task=32",
        "#SBATCH --time=04:00:00",
        "#SBATCH --output=%x-%j.out",
        "#SBATCH --signal=B:USR1@300",
        "#SBATCH --requeue",
        'MASTER_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "MASTER_ADDR=${MASTER_ADDR:-$MASTER_NODE}",
        "trap on_usr1 USR1",
        'scontrol requeue "$SLURM_JOB_ID"',
    ):
        assert line in [ln.strip() for ln in script.splitlines()], line
    (srun,) = [ln for ln in script.splitlines() if ln.startswith("srun ")]
    assert srun.startswith("srun --kill-on-bad-exit=1 python -m torch.distributed.run ")
    assert (
        "torch.distributed.run --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d "
        '--rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id "$SLURM_JOB_ID" '
        "train.py --lr 1e-4 '--run name' &"
    ) in srun
    assert "--standalone" not in script
    # every #SBATCH line comes before the first command
    first_cmd = next(i for i, ln in enumerate(script.splitlines()) if ln.startswith("set "))
    assert all(
        i < first_cmd for i, ln in enumerate(script.splitlines()) if ln.startswith("#SBATCH")
    )
    assert launch.commands == ["sbatch llama-lora.sbatch"]
    assert launch.script_name == "llama-lora.sbatch"
    bash_syntax_ok(script)


def test_slurm_signal_lead_and_time_validation() -> None:
    launch = build_launch(slurm_2x8(time="1-00:00:00", signal_lead_s=600))
    assert "#SBATCH --signal=B:USR1@600" in launch.script
    assert "#SBATCH --time=1-00:00:00" in launch.script
    with pytest.raises(InputError, match="--time"):
        build_launch(slurm_2x8(time="four hours"))
    with pytest.raises(InputError, match="not shorter"):
        build_launch(slurm_2x8(time="00:05:00", signal_lead_s=300))
    # without --signal-lead-s the lead is a quarter of the limit, at most 300 s
    for limit, lead in (("00:05:00", 75), ("1", 30), ("2", 60), ("04:00:00", 300)):
        assert f"#SBATCH --signal=B:USR1@{lead}" in build_launch(slurm_2x8(time=limit)).script


def test_slurm_python_and_command_launchers() -> None:
    pinned = build_launch(slurm_2x8(python="/opt/venv/bin/python"))
    assert "srun --kill-on-bad-exit=1 /opt/venv/bin/python -m torch.distributed.run" in (
        pinned.script
    )
    shell = build_launch(slurm_2x8(nodes=1, command="echo 'a b' && exit 4", exit_file="/r/x.json"))
    assert (
        "srun --kill-on-bad-exit=1 /bin/bash -c 'echo '\"'\"'a b'\"'\"' && exit 4' &"
        in shell.script
    )
    assert (
        "torch.distributed.run" not in shell.script
        and "mv -f /r/x.json.tmp /r/x.json" in shell.script
    )
    bash_syntax_ok(shell.script)
    with pytest.raises(InputError, match="one node"):
        build_launch(slurm_2x8(command="true"))


def test_slurm_single_node_and_no_gpu() -> None:
    one = build_launch(slurm_2x8(nodes=1, partition=None))
    assert "#SBATCH --nodes=1" in one.script and "--partition" not in one.script
    assert "torch.distributed.run --nnodes 1 --nproc-per-node 8" in one.script
    bash_syntax_ok(one.script)
    cpu = build_launch(slurm_2x8(nodes=1, gpus_per_node=0))
    assert "--gres" not in cpu.script and "--nproc-per-node 1" in cpu.script
    assert any("gloo" in a for a in cpu.assumptions)
    bash_syntax_ok(cpu.script)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("10:30", 630), ("04:00:00", 14400), ("1-02", 93600), ("2-00:00:10", 172810)],
)
def test_time_limit_seconds(text: str, seconds: int) -> None:
    assert time_limit_seconds(text) == seconds


def test_local_single_node_standalone() -> None:
    launch = build_launch(LaunchRequest("local", "train.py", ("--epochs", "1"), gpus_per_node=4))
    assert launch.commands == [
        "torchrun --standalone --nnodes 1 --nproc-per-node 4 train.py --epochs 1"
    ]
    assert launch.script is None
    bash_syntax_ok("\n".join(launch.commands))


def test_local_pinned_to_visible_devices() -> None:
    launch = build_launch(
        LaunchRequest("local", "train.py", gpus_per_node=2, visible_devices="1,3")
    )
    assert launch.commands[0].startswith(
        "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1,3 torchrun --standalone"
    )


def test_local_multi_node_rendezvous() -> None:
    launch = build_launch(
        LaunchRequest("local", "train.py", nodes=2, gpus_per_node=8, master_addr="node0")
    )
    assert launch.commands[:2] == ["export MASTER_ADDR=node0", "export MASTER_PORT=29500"]
    assert launch.commands[2] == (
        "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d "
        '--rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id train train.py'
    )
    bash_syntax_ok("\n".join(launch.commands))
    unset = build_launch(LaunchRequest("local", "train.py", nodes=2, gpus_per_node=8))
    assert "${MASTER_ADDR:?" in unset.commands[0]
    bash_syntax_ok("\n".join(unset.commands))


def test_cpu_plain_python_and_torchrun_variant() -> None:
    plain = build_launch(LaunchRequest("cpu", "train.py", ("--x", "1")))
    assert plain.commands == ["python train.py --x 1"] and plain.gpus_per_node == 0
    run = build_launch(LaunchRequest("cpu", "train.py", cpu_launcher="torchrun"))
    assert run.commands == ["torchrun --standalone --nnodes 1 --nproc-per-node 1 train.py"]
    assert any("gloo" in a for a in run.assumptions)
    with pytest.raises(InputError, match="--nodes"):
        build_launch(LaunchRequest("cpu", "train.py", nodes=2))


def test_torchrun_command_shapes() -> None:
    assert (
        torchrun_command(1, 2, "t.py") == "torchrun --standalone --nnodes 1 --nproc-per-node 2 t.py"
    )
    assert "--rdzv-id labcoat" in torchrun_command(2, 2, "t.py", "h:1")


def test_resolve_env_auto_and_counts() -> None:
    gpus = [GpuInfo(0, "NVIDIA H100 PCIe"), GpuInfo(1, "NVIDIA H100 PCIe")]
    local = Environment("local_gpu", gpus, "nvml")
    assert resolve_env("auto", None, local)[:2] == ("local", 2)
    assert resolve_env("auto", 1, local)[:2] == ("local", 1)
    job = Environment("slurm", gpus, "nvml", SlurmInfo(in_job=True, job_id="7", gpus_per_node=4))
    assert resolve_env("auto", None, job)[:2] == ("slurm", 4)
    assert resolve_env("auto", None, Environment("cpu_only"))[:2] == ("cpu", 0)
    with pytest.raises(InputError, match="--gpus-per-node"):
        resolve_env("slurm", None, Environment("cpu_only"))


def test_resolve_env_on_a_login_node_uses_the_partition_not_local_gpus() -> None:
    local = [GpuInfo(0, "NVIDIA H100 PCIe")]

    def login(gres: str) -> Environment:
        part = Partition("gpu", True, gres, gres_gpus(gres), 4)
        return Environment("slurm_login", local, "nvml", SlurmInfo(False, partitions=(part,)))

    env, gpus, notes = resolve_env("auto", None, login("gpu:a100:8"))
    assert (env, gpus) == ("slurm", 8) and any("GRES" in n for n in notes)
    assert resolve_env("auto", None, login("(null)"))[:2] == ("slurm", 0)
    with pytest.raises(InputError, match="--gpus-per-node"):
        resolve_env("auto", None, login("gpu"))  # unreadable: not the login node's 1 GPU


# ----------------------------------------------------------------------------- CLI


def test_cli_slurm_json_has_script_commands_assumptions() -> None:
    result = run_cli(
        "launch", "--env", "slurm", "--nodes", "2", "--gpus-per-node", "8", "--time", "04:00:00",
        "--script", "train.py", "--format", "json", "--", "--lr", "1e-4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"script", "commands", "assumptions", "env"} <= set(data)
    assert data["env"] == "slurm" and data["commands"] == ["sbatch train.sbatch"]
    assert "train.py --lr 1e-4 &" in data["script"]
    bash_syntax_ok(data["script"])


def test_cli_text_default_shows_script_and_run_lines() -> None:
    result = run_cli("launch", "--env", "slurm", "--gpus-per-node", "8", "--script", "t.py")
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --gres=gpu:8" in result.stdout and "sbatch train.sbatch" in result.stdout


def test_cli_auto_detects_two_fake_gpus() -> None:
    gpus = [device("NVIDIA H100 PCIe", 81559, 0x2331)] * 2
    result = run_cli(
        "launch", "--script", "train.py", "--format", "json", fake_scenario=scenario(gpus)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["env"] == "local"
    assert data["commands"] == ["torchrun --standalone --nnodes 1 --nproc-per-node 2 train.py"]


def test_cli_auto_without_gpus_is_cpu() -> None:
    result = run_cli(
        "launch", "--script", "train.py", fake_scenario=scenario(init_error="LIBRARY_NOT_FOUND")
    )
    assert result.returncode == 0, result.stderr
    assert "python train.py" in result.stdout and "cpu_only" in result.stdout


def test_cli_pin_free_gpus_skips_busy_gpu() -> None:
    busy = {"util_gpu_pct": [95], "util_memory_pct": [50], "memory_used_bytes": [60 * 1024**3]}
    idle = {"util_gpu_pct": [0], "util_memory_pct": [0], "memory_used_bytes": [0]}
    gpus = [
        device("NVIDIA H100 PCIe", 81559, 0x2331, series=busy),
        device("NVIDIA H100 PCIe", 81559, 0x2331, series=idle),
    ]
    result = run_cli(
        "launch", "--env", "local", "--gpus-per-node", "1", "--pin-free-gpus", "--interval-s", "0",
        "--script", "train.py", fake_scenario=scenario(gpus),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1 torchrun" in result.stdout
    too_many = run_cli(
        "launch", "--env", "local", "--gpus-per-node", "2", "--pin-free-gpus", "--interval-s", "0",
        "--script", "train.py", fake_scenario=scenario(gpus),
    )  # fmt: skip
    assert too_many.returncode == 1 and too_many.stdout == ""
    assert "need 2 free GPU(s) to pin, found 1" in too_many.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["launch", "--env", "slurm", "--gpus-per-node", "8"],  # no --script
        ["launch", "--env", "moon", "--script", "t.py"],
        ["launch", "--env", "slurm", "--gpus-per-node", "8", "--time", "soon", "--script", "t.py"],
        ["launch", "--env", "local", "--script", "t.py"],  # no GPUs here, none stated
        ["launch", "--env", "slurm", "--gpus-per-node", "8", "--pin-free-gpus", "--script", "t.py"],
        ["launch", "--env", "slurm", "--nodes", "0", "--gpus-per-node", "8", "--script", "t.py"],
        [
            "launch",
            "--env",
            "local",
            "--nodes",
            "2",
            "--gpus-per-node",
            "2",
            "--pin-free-gpus",
            "--script",
            "t.py",
        ],
        [
            "launch",
            "--env",
            "slurm",
            "--gpus-per-node",
            "8",
            "--job-name",
            "my job",
            "--script",
            "t.py",
        ],
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr.strip().splitlines()[-1]


def test_resolve_env_notes_when_already_in_a_job() -> None:
    job = Environment("slurm", [], "none", SlurmInfo(in_job=True, job_id="42", gpus_per_node=8))
    env, gpus, notes = resolve_env("auto", None, job)
    assert (env, gpus) == ("slurm", 8)
    assert any("already inside Slurm job 42" in n for n in notes)


def _fake_slurm_bin(tmp_path, srun_body: str):
    """A bin dir with fake ``scontrol`` (hostnames node1/node2; logs other calls) and ``srun``.

    Fake because the two-node allocation these tests need cannot exist on the one-node test
    cluster; the same script runs for real on one node in tests/slurm/test_launch.py."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "scontrol").write_text(
        '#!/bin/bash\nif [ "$1" = show ]; then echo node1; echo node2; exit 0; fi\n'
        'echo "$@" >> "$FAKE_LOG"\n'
    )
    (bindir / "srun").write_text('#!/bin/bash\necho "srun $*" >> "$FAKE_LOG"\n' + srun_body)
    for name in ("scontrol", "srun"):
        (bindir / name).chmod(0o755)
    return bindir


def _slurm_env(tmp_path, bindir) -> dict[str, str]:
    import os

    return {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "log"),
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_NODELIST": "node[1-2]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_SUBMIT_DIR": str(tmp_path),
    }


def test_sbatch_script_passes_training_failure_through(tmp_path) -> None:
    bindir = _fake_slurm_bin(tmp_path, "exit 3\n")
    script = tmp_path / "job.sbatch"
    script.write_text(build_launch(slurm_2x8()).script)
    env = _slurm_env(tmp_path, bindir)
    result = subprocess.run(
        [BASH, str(script)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 3
    assert "requeue" not in (tmp_path / "log").read_text()


def test_sbatch_trap_asks_training_to_stop_then_requeues(tmp_path) -> None:
    """Run the generated script with fake srun/scontrol: USR1 -> stop file -> exit 0 -> requeue."""
    import signal
    import time

    bindir = _fake_slurm_bin(
        tmp_path,
        'while [ ! -e "$LABCOAT_STOP_FILE" ]; do sleep 0.05; done\n'
        'echo checkpointed >> "$FAKE_LOG"\nexit 0\n',
    )
    script = tmp_path / "job.sbatch"
    script.write_text(build_launch(slurm_2x8()).script)
    log = tmp_path / "log"
    env = _slurm_env(tmp_path, bindir)
    proc = subprocess.Popen([BASH, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (log.exists() and "srun" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    lines = log.read_text().splitlines()
    assert lines[0].startswith(
        "srun --kill-on-bad-exit=1 python -m torch.distributed.run --nnodes 2"
    )
    assert "--rdzv-endpoint node1:29500 --rdzv-id 77" in lines[0]
    assert lines[1:] == ["checkpointed", "requeue 77"]
    assert "asking training to checkpoint" in out
    assert not (tmp_path / ".stop-77").exists()
