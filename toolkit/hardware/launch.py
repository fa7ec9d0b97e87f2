"""Runnable launch commands for a training script: CPU, one machine, several machines, Slurm.

:func:`build_launch` turns a :class:`LaunchRequest` into a :class:`Launch`: the shell commands to
type, an ``sbatch`` script where Slurm is used, and the assumptions the text rests on. Flag
spellings follow ``torchrun --help`` (torch >= 2.0 accepts the dashed forms) and ``man sbatch``.

- ``cpu``: ``python SCRIPT ARGS`` (or ``torchrun --standalone --nnodes 1 --nproc-per-node 1`` with
  the gloo backend; NCCL needs GPUs).
- ``local``, one node: ``torchrun --standalone --nnodes 1 --nproc-per-node G``, optionally pinned
  to free GPUs with ``CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=...``.
- ``local``, N nodes: the same command on every node, c10d rendezvous at ``$MASTER_ADDR``.
- ``slurm``: a batch script with one task per node (``--ntasks-per-node=1``), ``srun PYTHON -m
  torch.distributed.run`` (torchrun through the interpreter named, so nothing depends on a
  ``torchrun`` entry point being on the job's PATH) starting G processes per node, rendezvous at
  the first host of the allocation; or, for one process, the command as given under ``srun``; and
  ``--signal=B:USR1@<lead>`` + ``--requeue``: the batch shell traps USR1, creates a stop file the
  training script polls (``$LABCOAT_STOP_FILE``) so it can checkpoint and exit, and requeues the
  job once training has exited. USR1 is not forwarded to ``torchrun``: its agent does not handle
  SIGUSR1 (default action: terminate), which would kill the agent mid-step.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from toolkit.errors import InputError
from toolkit.hardware.detect import Environment

ENVS = ("cpu", "local", "slurm")
DEFAULT_MASTER_PORT = 29500
DEFAULT_SIGNAL_LEAD_S = 300
LAUNCHERS = ("torchrun", "command")
STOP_FILE_VAR = "LABCOAT_STOP_FILE"

_TIME_RE = re.compile(
    r"^(?:(?P<days>\d+)-(?P<dh>\d{1,2})(?::(?P<dm>\d{1,2})(?::(?P<ds>\d{1,2}))?)?"
    r"|(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2})"
    r"|(?P<mm>\d+):(?P<ss>\d{1,2})"
    r"|(?P<minutes>\d+))$"
)


@dataclass(frozen=True)
class LaunchRequest:
    """What to launch and where.

    ``gpus_per_node``: processes (one per GPU) per node; 0 means CPU. ``time``: Slurm time limit
    (``HH:MM:SS``, ``MM``, ``D-HH:MM:SS``...). ``signal_lead_s``: seconds before the time limit at
    which Slurm sends USR1 (None: :func:`default_signal_lead`). ``visible_devices``: a
    ``CUDA_VISIBLE_DEVICES`` value to pin (local). Slurm only: ``python`` is the interpreter that
    runs ``-m torch.distributed.run``; ``command`` (a shell command run as given, one task per
    node) replaces torchrun and the script; ``exit_file``: where the batch script writes
    ``{"exit_code": N, "job": ID}`` when the command ends for good (not when it requeues).
    """

    env: str
    script: str
    script_args: tuple[str, ...] = ()
    nodes: int = 1
    gpus_per_node: int = 1
    time: str = "04:00:00"
    partition: str | None = None
    account: str | None = None
    job_name: str = "train"
    output: str = "%x-%j.out"
    cpus_per_task: int | None = None
    signal_lead_s: int | None = None
    master_addr: str | None = None
    master_port: int = DEFAULT_MASTER_PORT
    cpu_launcher: str = "python"
    visible_devices: str | None = None
    python: str = "python"
    command: str | None = None
    exit_file: str | None = None


@dataclass
class Launch:
    """Generated launch text. ``commands``: shell lines to run, in order; ``script``: the sbatch
    script (Slurm only) meant to be saved as ``script_name``; ``assumptions``: one line each."""

    env: str
    nodes: int
    gpus_per_node: int
    commands: list[str]
    script: str | None = None
    script_name: str | None = None
    assumptions: list[str] = field(default_factory=list)


def time_limit_seconds(text: str) -> int:
    """Seconds in a Slurm time limit: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise InputError(
            f"--time: {text!r} is not a Slurm time limit; expected HH:MM:SS, MM, MM:SS or "
            "D-HH[:MM[:SS]]"
        )
    g = {k: int(v) if v is not None else 0 for k, v in match.groupdict().items()}
    if match.group("days") is not None:
        return ((g["days"] * 24 + g["dh"]) * 60 + g["dm"]) * 60 + g["ds"]
    if match.group("h") is not None:
        return (g["h"] * 60 + g["m"]) * 60 + g["s"]
    if match.group("mm") is not None:
        return g["mm"] * 60 + g["ss"]
    return g["minutes"] * 60


def default_signal_lead(limit_s: int) -> int:
    """USR1 lead in seconds for a time limit of ``limit_s`` seconds: a quarter of the limit, at
    most :data:`DEFAULT_SIGNAL_LEAD_S`, but at least half the limit up to 60 s, because slurmctld
    checks time limits (and sends the signal) only about every 30 s: a 1-minute job is warned
    30 s ahead, a 5-minute one 75 s, a 4-hour one 300 s."""
    return max(1, min(DEFAULT_SIGNAL_LEAD_S, max(limit_s // 4, min(60, limit_s // 2))))


def signal_lead(request: LaunchRequest) -> int:
    """The request's USR1 lead in seconds, defaulted from its time limit."""
    if request.signal_lead_s is not None:
        return request.signal_lead_s
    return default_signal_lead(time_limit_seconds(request.time))


def _program(request: LaunchRequest) -> str:
    return shlex.join([request.script, *request.script_args])


def torchrun_command(
    nnodes: int,
    nproc_per_node: int,
    program: str,
    rdzv_endpoint: str | None = None,
    rdzv_id: str | None = None,
    launcher: str = "torchrun",
) -> str:
    """``torchrun`` line: ``--standalone`` without an endpoint, c10d rendezvous with one.

    ``program`` is the already shell-quoted script and its arguments; ``rdzv_endpoint`` and
    ``rdzv_id`` are inserted verbatim (they may hold ``$VARS``, quoted by the caller).
    ``launcher`` replaces the word ``torchrun`` (e.g. ``/venv/bin/python -m torch.distributed.run``).
    """
    parts = [launcher]
    if rdzv_endpoint is None:
        parts.append("--standalone")
    parts += [f"--nnodes {nnodes}", f"--nproc-per-node {nproc_per_node}"]
    if rdzv_endpoint is not None:
        parts += [
            "--rdzv-backend c10d",
            f"--rdzv-endpoint {rdzv_endpoint}",
            f"--rdzv-id {rdzv_id or 'labcoat'}",
        ]
    return " ".join([*parts, program])


def _check(request: LaunchRequest) -> None:
    if request.env not in ENVS:
        raise InputError(f"--env: {request.env!r} is not one of {', '.join(ENVS)}")
    if request.command is None and not request.script:
        raise InputError("--script: give the training script to launch (e.g. train.py)")
    if request.nodes < 1:
        raise InputError(f"--nodes must be >= 1, got {request.nodes}")
    if request.gpus_per_node < 0:
        raise InputError(f"--gpus-per-node must be >= 0, got {request.gpus_per_node}")
    if request.env == "local" and request.gpus_per_node < 1:
        raise InputError("--env local needs --gpus-per-node >= 1 (or use --env cpu)")
    if request.env == "cpu" and request.nodes != 1:
        raise InputError("--env cpu launches on one machine; --nodes must be 1")
    for flag, value in (
        ("--job-name", request.job_name),
        ("--partition", request.partition),
        ("--account", request.account),
        ("--output", request.output),
        ("--time", request.time),
    ):
        if value is not None and (not value.strip() or re.search(r"\s", value)):
            raise InputError(f"{flag}: {value!r} must be one word without spaces")
    if not request.python.strip():
        raise InputError("--python: give the interpreter that runs the script (e.g. python)")
    if request.command is not None and not request.command.strip():
        raise InputError("--command: give the command to run")
    if request.cpu_launcher not in ("python", "torchrun"):
        raise InputError(
            f"--cpu-launcher: expected python or torchrun, got {request.cpu_launcher!r}"
        )


def _cpu(request: LaunchRequest) -> Launch:
    program = _program(request)
    alternative = torchrun_command(1, 1, program)
    if request.cpu_launcher == "torchrun":
        commands = [alternative]
        notes = [
            "CPU only: one process; torch.distributed must use backend='gloo' (NCCL needs GPUs)"
        ]
    else:
        commands = [shlex.join(["python", request.script, *request.script_args])]
        notes = [
            "CPU only: plain python, no process group needed",
            f"a script that calls init_process_group: `{alternative}` with backend='gloo' "
            "(NCCL needs GPUs)",
        ]
    return Launch("cpu", 1, 0, commands, assumptions=notes)


def _local(request: LaunchRequest) -> Launch:
    program = _program(request)
    g = request.gpus_per_node
    pin = ""
    notes = [f"{g} process(es) per node, one per GPU; backend='nccl'"]
    if request.visible_devices is not None:
        pin = f"CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={request.visible_devices} "
        notes.append(
            f"pinned to free GPUs {request.visible_devices} (NVML indices, PCI bus order; "
            "CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number them the same way)"
        )
    if request.nodes == 1:
        notes.append("single node: --standalone starts a local rendezvous on a free port")
        return Launch("local", 1, g, [pin + torchrun_command(1, g, program)], assumptions=notes)
    addr = request.master_addr
    addr_line = (
        f"export MASTER_ADDR={shlex.quote(addr)}"
        if addr
        else 'export MASTER_ADDR="${MASTER_ADDR:?set MASTER_ADDR to the hostname of node 0}"'
    )
    rdzv_id = shlex.quote(request.job_name)
    commands = [
        addr_line,
        f"export MASTER_PORT={request.master_port}",
        pin + torchrun_command(request.nodes, g, program, '"$MASTER_ADDR:$MASTER_PORT"', rdzv_id),
    ]
    notes += [
        f"run the same three lines on each of the {request.nodes} nodes; node ranks are assigned "
        "by the c10d rendezvous",
        f"node 0 ({addr or '$MASTER_ADDR'}) hosts the rendezvous; port {request.master_port} "
        "must be reachable from every node",
    ]
    return Launch("local", request.nodes, g, commands, assumptions=notes)


def _slurm_launch_line(request: LaunchRequest) -> tuple[str, str]:
    """``(what, srun line)``: torchrun through ``request.python``, or the command as given."""
    if request.command is not None:
        return (
            "the command as given",
            f"srun --kill-on-bad-exit=1 /bin/bash -c {shlex.quote(request.command)}",
        )
    nproc = max(request.gpus_per_node, 1)
    launcher = f"{shlex.quote(request.python)} -m torch.distributed.run"
    line = torchrun_command(
        request.nodes,
        nproc,
        _program(request),
        '"$MASTER_ADDR:$MASTER_PORT"',
        '"$SLURM_JOB_ID"',
        launcher,
    )
    return (
        f"one torchrun per node, each starting {nproc} process(es)",
        f"srun --kill-on-bad-exit=1 {line}",
    )


def sbatch_script(request: LaunchRequest) -> str:
    """The Slurm batch script text (bash) for ``request`` (``env`` = slurm)."""
    g = request.gpus_per_node
    lead = signal_lead(request)
    header = ["#!/bin/bash", f"#SBATCH --job-name={request.job_name}"]
    if request.partition:
        header.append(f"#SBATCH --partition={request.partition}")
    if request.account:
        header.append(f"#SBATCH --account={request.account}")
    header += [f"#SBATCH --nodes={request.nodes}", "#SBATCH --ntasks-per-node=1"]
    if g > 0:
        header.append(f"#SBATCH --gres=gpu:{g}")
    if request.cpus_per_task:
        header.append(f"#SBATCH --cpus-per-task={request.cpus_per_task}")
    header += [
        f"#SBATCH --time={request.time}",
        f"#SBATCH --output={request.output}",
        "#SBATCH --open-mode=append",
        f"#SBATCH --signal=B:USR1@{lead}",
        "#SBATCH --requeue",
    ]
    what, launch = _slurm_launch_line(request)
    record = ""
    if request.exit_file is not None:
        target = shlex.quote(request.exit_file)
        record = f"""
# The exit code, for trackers that come back after the controller forgot the job (MinJobAge)
# on clusters without accounting storage.
printf '{{"exit_code": %d, "job": "%s"}}\\n' "$status" "$SLURM_JOB_ID" > {target}.tmp
mv -f {target}.tmp {target}
"""
    body = f"""
set -eu

# Rendezvous: the first host of the allocation runs the c10d store, reached at the address Slurm
# itself uses for that node (NodeAddr; the node name where none is shown). (pipefail only after
# this line: head exits after one host, and scontrol may then die of SIGPIPE.)
MASTER_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
set -o pipefail
if [ -z "$MASTER_NODE" ]; then
    echo "could not resolve the first host of $SLURM_JOB_NODELIST" >&2
    exit 1
fi
MASTER_ADDR=$( (scontrol show node -o "$MASTER_NODE" 2>/dev/null || true) |
    sed -nE 's/.*NodeAddr=([^ ]*).*/\\1/p')
MASTER_ADDR=${{MASTER_ADDR:-$MASTER_NODE}}
MASTER_PORT={request.master_port}
export MASTER_ADDR MASTER_PORT

# Checkpoint before the time limit. Slurm sends USR1 to this batch shell (B:) {lead} s before the
# limit. The trap does not forward USR1 to the training processes (torchrun's agent does not
# handle SIGUSR1 and would die); it creates ${STOP_FILE_VAR}, which the training script polls
# between steps: when the file exists, save a checkpoint and exit 0 (leaving the file). The job is
# then requeued and resumes from the checkpoint.
export {STOP_FILE_VAR}="${{SLURM_SUBMIT_DIR:-$PWD}}/.stop-${{SLURM_JOB_ID}}"
rm -f "${STOP_FILE_VAR}"
STOP_REQUESTED=0
on_usr1() {{
    echo "$(date -Is) USR1: time limit in about {lead} s; asking training to checkpoint and exit"
    STOP_REQUESTED=1
    touch "${STOP_FILE_VAR}"
}}
trap on_usr1 USR1

echo "job $SLURM_JOB_ID restart ${{SLURM_RESTART_COUNT:-0}}: $SLURM_JOB_NUM_NODES node(s), rendezvous $MASTER_ADDR:$MASTER_PORT"

# One task per node (--ntasks-per-node=1): {what}.
# Run in the background so the trap can fire while training runs.
{launch} &
SRUN_PID=$!

set +e
wait "$SRUN_PID"
status=$?
while [ "$status" -gt 128 ] && kill -0 "$SRUN_PID" 2>/dev/null; do
    wait "$SRUN_PID"   # a trapped signal interrupted wait; training is still running
    status=$?
done
set -e

# Requeue when training stopped on the request: the stop file is still there. A training script
# that finished its work anyway removes the file, and the job ends here instead.
if [ "$STOP_REQUESTED" -eq 1 ] && [ -e "${STOP_FILE_VAR}" ]; then
    echo "$(date -Is) training exited with status $status after the stop request; requeueing"
    rm -f "${STOP_FILE_VAR}"
    scontrol requeue "$SLURM_JOB_ID"
    exit "$status"
fi
{record}exit "$status"
"""
    return "\n".join(header) + "\n" + body


def _slurm(request: LaunchRequest) -> Launch:
    limit = time_limit_seconds(request.time)
    lead = signal_lead(request)
    if lead >= limit:
        raise InputError(
            f"--signal-lead-s {lead} is not shorter than --time {request.time} ({limit} s)"
        )
    if not 0 < lead <= 65535:
        raise InputError(f"--signal-lead-s must be 1..65535 s, got {lead}")
    if request.command is not None and request.nodes != 1:
        raise InputError(
            "a command run as given takes one node; for several nodes launch a script "
            "through torchrun (--script)"
        )
    name = f"{request.job_name}.sbatch"
    g = request.gpus_per_node
    if request.command is not None:
        notes = ["1 node, one task: the command runs as given under srun"]
    else:
        notes = [
            f"{request.nodes} node(s) x {max(g, 1)} process(es); one srun task per node runs "
            f"{request.python} -m torch.distributed.run (torchrun)",
            "MASTER_ADDR = NodeAddr of the first host of $SLURM_JOB_NODELIST; rendezvous id = "
            "$SLURM_JOB_ID",
        ]
        if request.python == "python":
            notes.append(
                "python = the first python on the job's PATH (sbatch exports the submitting "
                "shell's environment); --python /path/to/venv/bin/python pins one"
            )
    notes += [
        f"USR1 reaches the batch shell {lead} s before the limit (Slurm may "
        "send it up to 60 s earlier); the training script must poll $LABCOAT_STOP_FILE, "
        "checkpoint, exit 0, and resume from its latest checkpoint after the requeue",
        "--requeue needs the cluster to allow requeueing (JobRequeue / partition policy)",
    ]
    if request.signal_lead_s is None:
        notes.append(
            f"USR1 lead {lead} s from --time (a quarter of it; at least half of it up to 60 s; "
            f"at most {DEFAULT_SIGNAL_LEAD_S} s)"
        )
    if g == 0:
        notes.append("no GPUs requested: torch.distributed must use backend='gloo'")
    else:
        notes.append("backend='nccl'; --gres=gpu:K may need a type on some clusters (gpu:a100:K)")
    return Launch(
        "slurm",
        request.nodes,
        g,
        [f"sbatch {shlex.quote(name)}"],
        script=sbatch_script(request),
        script_name=name,
        assumptions=notes,
    )


def build_launch(request: LaunchRequest) -> Launch:
    """Commands, script and assumptions for ``request``; raises :class:`InputError` if invalid."""
    _check(request)
    if request.env == "cpu":
        return _cpu(request)
    if request.env == "local":
        return _local(request)
    return _slurm(request)


def resolve_env(
    requested: str, gpus_per_node: int | None, environment: Environment | None
) -> tuple[str, int, list[str]]:
    """``(env, gpus_per_node, notes)`` for ``--env`` (cpu|local|slurm|auto) and the flag value.

    ``auto`` maps detected ``slurm`` and ``slurm_login`` -> slurm, ``local_gpu`` -> local,
    ``cpu_only`` -> cpu. Without ``--gpus-per-node`` the count comes from the Slurm job
    (``SLURM_GPUS_ON_NODE`` / ``SLURM_GPUS_PER_NODE``); outside a job on a Slurm machine, from the
    default partition's GRES as ``sinfo`` reports it (the compute nodes', not this machine's);
    else from the GPUs NVML (or torch) lists; ``environment`` is only read when needed (``None`` =
    not detected).
    """
    notes: list[str] = []
    env = requested
    if requested == "auto":
        if environment is None:
            raise InputError("--env auto needs environment detection")
        env = {"slurm": "slurm", "slurm_login": "slurm", "local_gpu": "local", "cpu_only": "cpu"}[
            environment.kind
        ]
        notes.append(f"--env auto: detected {environment.kind} -> {env}")
        slurm = environment.slurm
        if slurm is not None and slurm.in_job:
            notes.append(
                f"already inside Slurm job {slurm.job_id}: to use this allocation instead of "
                "submitting a new job, run the script's srun line here"
            )
    elif requested not in ENVS:
        raise InputError(f"--env: {requested!r} is not one of cpu, local, slurm, auto")
    if env == "cpu":
        return env, 0, notes
    if gpus_per_node is not None:
        return env, gpus_per_node, notes
    detected = None
    if environment is not None:
        slurm = environment.slurm
        if env == "slurm" and slurm is not None and slurm.in_job and slurm.gpus_per_node:
            detected = slurm.gpus_per_node
            notes.append(f"GPUs per node from the current Slurm job: {detected}")
        elif env == "slurm" and slurm is not None and not slurm.in_job:
            per_node = slurm.cluster_gpus_per_node
            if per_node == 0:
                notes.append("the default partition's nodes have no GPUs (sinfo GRES): CPU job")
                return env, 0, notes
            if per_node:
                detected = per_node
                notes.append(f"GPUs per node from the default partition's GRES (sinfo): {detected}")
        elif environment.gpus:
            detected = len(environment.gpus)
            notes.append(f"GPUs per node = the {detected} GPU(s) {environment.source} lists here")
    if not detected:
        raise InputError(
            f"--env {env}: no GPUs detected here; state --gpus-per-node (e.g. 8) or use --env cpu"
        )
    return env, detected, notes
