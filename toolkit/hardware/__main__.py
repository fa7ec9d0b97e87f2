"""``python -m toolkit.hardware specs|detect``: GPU spec table and what this machine has."""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.cli import EXIT_OK, Parser, add_format_flag, print_json, render_table, run
from toolkit.hardware.detect import Environment, detect
from toolkit.hardware.specs import DTYPES, GIB, GpuSpec, all_specs, get_spec

PROG = "python -m toolkit.hardware"

DESCRIPTION = """\
GPU specs (one data file, toolkit/hardware/gpu_specs.yaml) and environment detection.

  specs   peak numbers per GPU: memory (GiB), memory bandwidth (GB/s = 10^9 bytes/s) and
          DENSE peak TFLOP/s (10^12 FLOP/s, no 2:4 sparsity) per dtype; fp16/bf16/fp8 are the
          FP32-accumulate tensor rates, fp32 is non-tensor FP32 (matrix FP32 on AMD).
  detect  cpu_only | local_gpu | slurm, the GPUs NVML (else torch.cuda) sees, each matched
          exactly to a spec key or left unmatched with the reason.

Exit codes: 0 ok, 2 usage error or unknown GPU name.
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
            lines.append("slurm: cluster tools present, not inside a job")
    if env.notes:
        lines += ["", "notes:", *[f"  - {n}" for n in env.notes]]
    return "\n".join(lines)


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{specs,detect}")
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
        help="detect cpu_only / local_gpu / slurm and match each GPU to a spec",
        description=(
            "Detect the environment and exit 0.\n\n"
            "kind: cpu_only | local_gpu | slurm (SLURM_JOB_ID set, or sinfo on PATH).\n"
            "GPUs from NVML; torch.cuda only if NVML is unavailable (the notes say why).\n"
            "Per GPU: name, memory (bytes in JSON, GiB in the table), PCI device id, UUID and\n"
            "the spec key it matches exactly, or no key and the reason."
        ),
    )
    add_format_flag(det)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "specs":
        specs = [get_spec(args.gpu)] if args.gpu else all_specs()
        if args.format == "json":
            print_json([s.to_dict() for s in specs])
        else:
            print(_specs_table(specs))
        return EXIT_OK
    env = detect()
    if args.format == "json":
        print_json(env)
    else:
        print(_detect_table(env))
    return EXIT_OK


if __name__ == "__main__":
    run(main, prog=PROG)
