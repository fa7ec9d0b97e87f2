"""``python -m toolkit.hardware specs|detect|launch|free-gpus``: GPU specs, what this machine has,
launch commands for it, and free GPUs to pin on a shared machine."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from toolkit import cli
from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    non_negative_float,
    non_negative_int,
    positive_int,
    print_json,
    render_table,
    run,
    to_jsonable,
)
from toolkit.errors import InputError, UnavailableError
from toolkit.hardware.detect import Environment, detect
from toolkit.hardware.gpu_select import (
    DEFAULT_MAX_MEM_USED_PCT,
    DEFAULT_MAX_UTIL_PCT,
    Selection,
    select_free_gpus,
)
from toolkit.hardware.launch import (
    DEFAULT_MASTER_PORT,
    DEFAULT_SIGNAL_LEAD_S,
    Launch,
    LaunchRequest,
    build_launch,
    resolve_env,
)
from toolkit.hardware.specs import DTYPES, GIB, GpuSpec, all_specs, get_spec

PROG = "python -m toolkit.hardware"

DESCRIPTION = """\
GPU specs (one data file, toolkit/hardware/gpu_specs.yaml) and environment detection.

  specs   peak numbers per GPU: memory (GiB), memory bandwidth (GB/s = 10^9 bytes/s) and
          DENSE peak TFLOP/s (10^12 FLOP/s, no 2:4 sparsity) per dtype; fp16/bf16/fp8 are the
          FP32-accumulate tensor rates, fp32 is non-tensor FP32 (matrix FP32 on AMD).
  detect  cpu_only | local_gpu | slurm (in a job) | slurm_login (submits to one), the GPUs
          NVML (else torch.cuda) sees, each matched exactly to a spec key or left unmatched
          with the reason.
  launch  runnable commands for a training script here or on a stated environment: python /
          torchrun (single and multi-node, c10d rendezvous) / an sbatch script for Slurm.
  free-gpus  the CUDA_VISIBLE_DEVICES value of K idle GPUs on a shared machine (NVML).

Exit codes: 0 ok, 1 fewer free GPUs than asked or NVML unavailable (free-gpus, launch
--pin-free-gpus), 2 usage error or unknown GPU name.
"""


def _tflops(spec: GpuSpec, dtype: str) -> str:
    value = spec.peak_tflops.get(dtype)
    return "-" if value is None else f"{value:g}"


def _specs_table(specs: list[GpuSpec]) -> str:
    dtypes = [d for d in DTYPES if any(d in s.peak_tflops for s in specs)]
    headers = ["key", "name", "mem GiB", "GB/s", *[f"{d} TF" for d in dtypes]]
    rows = [
        [
            s.key,
            s.name,
            f"{s.memory_gib:g}",
            f"{s.memory_bandwidth_gbs:g}",
            *[_tflops(s, d) for d in dtypes],
        ]
        for s in specs
    ]
    lines = [render_table(headers, rows), ""]
    lines.append("TF = dense peak TFLOP/s (no sparsity); '-' = the part lacks that dtype.")
    if len(specs) == 1:
        spec = specs[0]
        lines.append(f"source: {spec.source}")
        if spec.notes:
            lines.append(f"notes: {spec.notes}")
        if spec.aliases:
            lines.append(f"matches reported names: {', '.join(spec.aliases)}")
    else:
        lines.append("Sources and notes per GPU: --gpu KEY, or --format json.")
    return "\n".join(lines)


def _detect_table(env: Environment) -> str:
    lines = [f"kind: {env.kind}    GPUs listed by: {env.source}"]
    if env.gpus:
        rows = [
            [
                g.index,
                g.name,
                "?" if g.memory_total_bytes is None else f"{g.memory_total_bytes / GIB:.1f}",
                "?" if g.pci_device_id is None else f"0x{g.pci_device_id:04x}",
                g.spec_key or "(no match)",
            ]
            for g in env.gpus
        ]
        lines += ["", render_table(["#", "name", "mem GiB", "pci id", "spec key"], rows)]
        unmatched = [g for g in env.gpus if g.spec_key is None]
        lines += [f"GPU {g.index}: {g.spec_reason}" for g in unmatched]
    if env.slurm is not None:
        s = env.slurm
        lines.append("")
        if s.in_job:
            lines.append(
                f"slurm job {s.job_id} ({s.job_name or '?'}) partition={s.partition or '?'} "
                f"nodes={s.num_nodes if s.num_nodes is not None else '?'} "
                f"tasks={s.ntasks if s.ntasks is not None else '?'} "
                f"gpus/node={s.gpus_per_node if s.gpus_per_node is not None else '?'}"
            )
        else:
            lines.append(
                "slurm: cluster tools present, not inside an allocation (submit with sbatch)"
            )
            for part in s.partitions:
                gpus = "?" if part.gpus_per_node is None else part.gpus_per_node
                lines.append(
                    f"  partition {part.name}{' (default)' if part.default else ''}: "
                    f"{part.nodes if part.nodes is not None else '?'} node(s), GPUs/node {gpus}"
                )
    if env.notes:
        lines += ["", "notes:", *[f"  - {n}" for n in env.notes]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- free GPUs


def _add_threshold_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-mem-used-pct",
        type=cli.percent("--max-mem-used-pct"),
        default=DEFAULT_MAX_MEM_USED_PCT,
        help=f"free = memory used <= this %% of total (default {DEFAULT_MAX_MEM_USED_PCT:g})",
    )
    parser.add_argument(
        "--max-util-pct",
        type=cli.percent("--max-util-pct"),
        default=DEFAULT_MAX_UTIL_PCT,
        help=f"free = GPU utilization <= this %% (default {DEFAULT_MAX_UTIL_PCT:g})",
    )
    parser.add_argument(
        "--samples",
        type=positive_int("--samples"),
        default=3,
        help="NVML reads per GPU; the worst one counts (default 3)",
    )
    parser.add_argument(
        "--interval-s",
        type=non_negative_float("--interval-s"),
        default=0.2,
        help="seconds between reads (default 0.2)",
    )


def _selection_table(sel: Selection) -> str:
    rows = [
        [
            g.index,
            g.name,
            "?" if g.mem_used_pct is None else f"{g.mem_used_pct:.1f}",
            "?" if g.util_pct is None else f"{g.util_pct:g}",
            "yes" if g.index in sel.chosen and sel.enough else ("free" if g.free else "no"),
            g.reason,
        ]
        for g in sel.gpus
    ]
    lines = [render_table(["#", "name", "mem used %", "util %", "chosen", "why"], rows)]
    lines.append(
        f"free = memory used <= {sel.max_mem_used_pct:g}% and utilization <= "
        f"{sel.max_util_pct:g}% in all {sel.samples} sample(s); indices in PCI bus order "
        "(use with CUDA_DEVICE_ORDER=PCI_BUS_ID)"
    )
    lines += sel.notes
    return "\n".join(lines)


def _select(args: argparse.Namespace, count: int) -> Selection | None:
    """Selection, or ``None`` after printing why NVML could not be used."""
    try:
        return select_free_gpus(
            count, args.max_mem_used_pct, args.max_util_pct, args.samples, args.interval_s
        )
    except UnavailableError as exc:
        sys.stderr.write(f"{PROG} {args.command}: {exc}; cannot tell which GPUs are free\n")
        return None


def _free_gpus_main(args: argparse.Namespace) -> int:
    sel = _select(args, args.count)
    if sel is None:
        return EXIT_FAILED
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        sel.notes.append(
            f"CUDA_VISIBLE_DEVICES={visible!r} is already set here; the indices above are NVML's "
            "(all GPUs on the machine), not positions within it"
        )
    if args.format == "json":
        print_json(
            {
                "cuda_visible_devices": sel.value,
                "cuda_visible_devices_uuids": sel.uuid_value,
                "enough": sel.enough,
                **{k: v for k, v in vars(sel).items()},
            }
        )
    else:
        if sel.enough:
            print(sel.uuid_value if args.uuids else sel.value)
        sys.stderr.write(_selection_table(sel) + "\n")
    if not sel.enough:
        free = sum(g.free for g in sel.gpus)
        sys.stderr.write(f"{PROG} free-gpus: need {sel.requested} free GPU(s), found {free}\n")
        return EXIT_FAILED
    return EXIT_OK


def _add_free_gpus_parser(sub: argparse._SubParsersAction) -> None:
    free = sub.add_parser(
        "free-gpus",
        help="CUDA_VISIBLE_DEVICES value of K idle GPUs (NVML memory used and utilization)",
        description=(
            "Print the CUDA_VISIBLE_DEVICES value of --count free GPUs, e.g.\n"
            "  export CUDA_DEVICE_ORDER=PCI_BUS_ID\n"
            "  export CUDA_VISIBLE_DEVICES=$(python -m toolkit.hardware free-gpus --count 2)\n\n"
            "stdout: the value only (comma-separated NVML indices, PCI bus order); stderr: the\n"
            "table of every GPU and why it was or was not free. The least loaded free GPUs win.\n"
            "Exit codes: 0 enough free GPUs, 1 fewer than --count free or NVML unavailable,\n"
            "2 usage error."
        ),
    )
    free.add_argument(
        "--count", type=positive_int("--count"), default=1, help="GPUs needed (default 1)"
    )
    free.add_argument("--uuids", action="store_true", help="print GPU UUIDs instead of indices")
    _add_threshold_flags(free)
    add_format_flag(free)


# ----------------------------------------------------------------------------- launch


def _launch_text(launch: Launch) -> str:
    lines = [f"# env: {launch.env}   nodes: {launch.nodes}   GPUs per node: {launch.gpus_per_node}"]
    if launch.script is not None:
        lines += ["", f"# ---- save as {launch.script_name} ----", launch.script.rstrip(), "# ----"]
    lines += ["", "# run:", *launch.commands, "", "# assumptions:"]
    lines += [f"#  - {a}" for a in launch.assumptions]
    return "\n".join(lines)


def _launch_main(args: argparse.Namespace) -> int:
    script_args = list(args.script_args)
    if script_args and script_args[0] == "--":
        script_args = script_args[1:]
    environment = (
        detect()
        if args.env == "auto" or (args.env != "cpu" and args.gpus_per_node is None)
        else None
    )
    env, gpus, notes = resolve_env(args.env, args.gpus_per_node, environment)
    visible = None
    if args.pin_free_gpus:
        if env != "local" or args.nodes != 1:
            raise InputError(
                "--pin-free-gpus applies to --env local with --nodes 1 (it reads this machine's GPUs)"
            )
        sel = _select(args, gpus)
        if sel is None:
            return EXIT_FAILED
        if not sel.enough:
            sys.stderr.write(_selection_table(sel) + "\n")
            free = sum(g.free for g in sel.gpus)
            sys.stderr.write(f"{PROG} launch: need {gpus} free GPU(s) to pin, found {free}\n")
            return EXIT_FAILED
        visible = sel.value
    request = LaunchRequest(
        env=env,
        script=args.script,
        script_args=tuple(script_args),
        nodes=args.nodes,
        gpus_per_node=gpus,
        time=args.time,
        partition=args.partition,
        account=args.account,
        job_name=args.job_name,
        output=args.output,
        cpus_per_task=args.cpus_per_task,
        signal_lead_s=args.signal_lead_s,
        master_addr=args.master_addr,
        master_port=args.master_port,
        cpu_launcher=args.cpu_launcher,
        python=args.python,
        visible_devices=visible,
    )
    launch = build_launch(request)
    launch.assumptions = notes + launch.assumptions
    if args.format == "json":
        print_json(launch)
    else:
        print(_launch_text(launch))
    return EXIT_OK


def _add_launch_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch",
        help="print runnable commands: python / torchrun / an sbatch script for Slurm",
        description=(
            "Print the commands that launch --script on the detected or stated environment.\n\n"
            "  cpu    python SCRIPT (or --cpu-launcher torchrun: 1 process, backend gloo)\n"
            "  local  torchrun --standalone on one node; with --nodes N, the same torchrun\n"
            "         line on every node with c10d rendezvous at $MASTER_ADDR:$MASTER_PORT\n"
            "  slurm  an sbatch script: --nodes, --ntasks-per-node=1, --gres=gpu:K, --time,\n"
            "         --signal=B:USR1@LEAD + a trap that asks training to checkpoint (stop\n"
            "         file $LABCOAT_STOP_FILE) and requeues, srun PYTHON -m\n"
            "         torch.distributed.run (torchrun; PYTHON = --python) with rendezvous at\n"
            "         the first host of the allocation\n"
            "  auto   (default) slurm / local / cpu from `detect`\n\n"
            "Arguments for the script go after `--`:  launch --script train.py -- --lr 1e-4\n"
            "--format json: {env, nodes, gpus_per_node, commands, script, script_name,\n"
            "assumptions}. Exit codes: 0 ok, 1 --pin-free-gpus found too few free GPUs or no\n"
            "NVML, 2 usage error."
        ),
    )
    p.add_argument("--env", choices=("cpu", "local", "slurm", "auto"), default="auto")
    p.add_argument("--script", required=True, help="training script, e.g. train.py")
    p.add_argument("script_args", nargs="*", metavar="-- ARGS", help="arguments for the script")
    p.add_argument("--nodes", type=positive_int("--nodes"), default=1, help="nodes (default 1)")
    p.add_argument(
        "--gpus-per-node",
        type=non_negative_int("--gpus-per-node"),
        default=None,
        help="GPUs (= processes) per node, 0 for CPU processes; default: detected (Slurm job, "
        "NVML or torch)",
    )
    p.add_argument("--time", default="04:00:00", help="Slurm time limit (default 04:00:00)")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--account", help="Slurm account")
    p.add_argument(
        "--job-name", default="train", help="Slurm job name / rendezvous id (default train)"
    )
    p.add_argument("--output", default="%x-%j.out", help="Slurm log path (default %%x-%%j.out)")
    p.add_argument(
        "--cpus-per-task",
        type=positive_int("--cpus-per-task"),
        help="Slurm CPUs per task (per node)",
    )
    p.add_argument(
        "--signal-lead-s",
        type=positive_int("--signal-lead-s"),
        default=None,
        help=(
            "send USR1 this many seconds before the time limit (default: a quarter of --time, "
            f"at most {DEFAULT_SIGNAL_LEAD_S})"
        ),
    )
    p.add_argument(
        "--python",
        default="python",
        help=(
            "slurm: interpreter that runs `-m torch.distributed.run` in the job (default: the "
            "python on the job's PATH; give a venv's python to pin it)"
        ),
    )
    p.add_argument("--master-addr", help="hostname of node 0 (local multi-node)")
    p.add_argument("--master-port", type=positive_int("--master-port"), default=DEFAULT_MASTER_PORT)
    p.add_argument("--cpu-launcher", choices=("python", "torchrun"), default="python")
    p.add_argument(
        "--pin-free-gpus",
        action="store_true",
        help="local: prefix CUDA_VISIBLE_DEVICES with --gpus-per-node free GPUs from NVML",
    )
    _add_threshold_flags(p)
    add_format_flag(p)


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{specs,detect,launch,free-gpus}"
    )
    specs = sub.add_parser(
        "specs",
        help="GPU spec table: memory GiB, bandwidth GB/s, dense peak TFLOP/s per dtype",
        description=(
            "Print GPU specs from toolkit/hardware/gpu_specs.yaml.\n\n"
            "Units: memory in GiB; memory bandwidth in GB/s (10^9 bytes/s); peaks in TFLOP/s\n"
            "(10^12 FLOP/s), DENSE (no 2:4 sparsity). fp16/bf16/fp8 are FP32-accumulate tensor\n"
            "rates; fp32 is non-tensor FP32 on NVIDIA, matrix FP32 on AMD; '-' = part lacks it.\n"
            "JSON: always a list of objects with every field: source (datasheet URL), notes,\n"
            "aliases, PCI device ids, sparse_tflops (published, for cross-checks only)."
        ),
    )
    specs.add_argument(
        "--gpu",
        metavar="NAME",
        help=(
            "show one GPU: a key (h100-sxm), display name, alias or the name NVML/torch reports "
            "('NVIDIA H100 80GB HBM3'); case-insensitive. Unknown or ambiguous names exit 2."
        ),
    )
    add_format_flag(specs)
    det = sub.add_parser(
        "detect",
        help="detect cpu_only / local_gpu / slurm / slurm_login and match each GPU to a spec",
        description=(
            "Detect the environment and exit 0.\n\n"
            "kind: cpu_only | local_gpu | slurm (inside a job: SLURM_JOB_ID set) |\n"
            "slurm_login (sinfo on PATH and its controller answers, but no job: submit with\n"
            "sbatch; partitions and GPUs per node from sinfo).\n"
            "GPUs from NVML; torch.cuda only if NVML is unavailable (the notes say why).\n"
            "Per GPU: name, memory (bytes in JSON, GiB in the table), PCI device id, UUID and\n"
            "the spec key it matches exactly, or no key and the reason."
        ),
    )
    add_format_flag(det)
    _add_launch_parser(sub)
    _add_free_gpus_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "launch":
        return _launch_main(args)
    if args.command == "free-gpus":
        return _free_gpus_main(args)
    if args.command == "specs":
        specs = [get_spec(args.gpu)] if args.gpu else all_specs()
        if args.format == "json":
            print_json([s.to_dict() for s in specs])
        else:
            print(_specs_table(specs))
        return EXIT_OK
    env = detect()
    if args.format == "json":
        data = to_jsonable(env)
        for gpu in data["gpus"]:  # PCI ids as "0x2331", as in `specs` and the spec data file
            if gpu["pci_device_id"] is not None:
                gpu["pci_device_id"] = f"0x{gpu['pci_device_id']:04x}"
        print_json(data)
    else:
        print(_detect_table(env))
    return EXIT_OK


if __name__ == "__main__":
    run(main, prog=PROG)
