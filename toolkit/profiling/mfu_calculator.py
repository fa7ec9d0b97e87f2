"""MFU/HFU calculator: ``python -m toolkit.profiling.mfu_calculator``.

Takes a model (Hugging Face config.json or a shipped preset), a sequence length, a measured
throughput and a peak, and prints MFU and HFU with the arithmetic that produced them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    fmt_num,
    positive_float,
    positive_int,
    print_json,
    render_table,
    run,
)
from toolkit.compute.flops import RECOMPUTE_MODES, TrainingFlops, training_flops
from toolkit.compute.mfu import Utilization, utilization, utilization_from_step
from toolkit.compute.model_config import (
    PRESET_SOURCES,
    ModelShape,
    ParamCount,
    count_params,
    load_config,
    load_preset,
    preset_names,
)
from toolkit.errors import InputError

PROG = "python -m toolkit.profiling.mfu_calculator"

EPILOG = """\
formula (PaLM, Chowdhery et al. 2022, appendix B):
  model FLOPs/token = 6N + 12*L*H*Q*T   (N matmul params, L layers, H query heads,
                                          Q head dim, T sequence length)
  MFU = tokens/s x model FLOPs/token / (num GPUs x peak FLOP/s per GPU)
  HFU = same with recomputation FLOPs added (--recompute); MFU never counts them.

examples:
  %(prog)s --preset llama-3-8b --seq-len 8192 --tokens-per-sec 3.1e5 --gpu h100-sxm --num-gpus 64
  %(prog)s --config ./config.json --seq-len 2048 --step-time-ms 850 --tokens-per-step 524288 \\
      --peak-tflops 312 --num-gpus 8 --recompute full

exit codes: 0 ok; 1 computed MFU or HFU above 100%% (inputs are inconsistent); 2 usage error.
"""


@dataclass(frozen=True)
class Report:
    """Everything the calculator computed, for ``--format json``."""

    model: str
    model_type: str
    seq_len: int
    params: ParamCount
    flops: TrainingFlops
    peak_source: str
    dtype: str
    utilization: Utilization
    warnings: list[str]


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Model and hardware FLOPs utilization (MFU, HFU) of a training run.",
        epilog=EPILOG,
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--config", metavar="PATH", help="Hugging Face config.json (or a directory holding one)"
    )
    model.add_argument(
        "--preset",
        metavar="NAME",
        help=f"shipped model config: {', '.join(preset_names())}",
    )
    parser.add_argument(
        "--seq-len",
        type=positive_int("--seq-len"),
        required=True,
        metavar="TOKENS",
        help="training sequence length T in tokens (sets the attention term 12*L*H*Q*T)",
    )
    parser.add_argument(
        "--tokens-per-sec",
        type=positive_float("--tokens-per-sec"),
        metavar="TOK/S",
        help="measured training throughput in tokens/s summed over ALL GPUs (not per GPU)",
    )
    parser.add_argument(
        "--step-time-ms",
        type=positive_float("--step-time-ms"),
        metavar="MS",
        help="measured time of one optimizer step in milliseconds (needs --tokens-per-step)",
    )
    parser.add_argument(
        "--tokens-per-step",
        type=positive_float("--tokens-per-step"),
        metavar="TOKENS",
        help="tokens per optimizer step over ALL GPUs (global batch size x sequence length)",
    )
    parser.add_argument(
        "--gpu",
        metavar="NAME",
        help="GPU name to look up its dense peak per GPU for --dtype "
        "(an unknown name lists the known ones)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=positive_float("--peak-tflops"),
        metavar="TFLOP/S",
        help="dense peak of ONE GPU in TFLOP/s (10^12 FLOP/s) for the dtype in use; "
        "overrides the --gpu lookup",
    )
    parser.add_argument(
        "--dtype",
        default="bf16",
        help="math dtype for the --gpu peak lookup, e.g. bf16, fp16, fp8, tf32 (default: bf16)",
    )
    parser.add_argument(
        "--num-gpus",
        type=positive_int("--num-gpus"),
        default=1,
        metavar="N",
        help="number of GPUs the throughput was measured over (default: 1)",
    )
    parser.add_argument(
        "--causal",
        action="store_true",
        help="count only the causal half of attention (FlashAttention-style kernels); "
        "default counts the full T x T square as PaLM and nanoGPT do",
    )
    parser.add_argument(
        "--recompute",
        choices=RECOMPUTE_MODES,
        default="none",
        help="activation recomputation: 'full' adds one forward, 'selective' adds the "
        "attention forward; counted in HFU only, never MFU (default: none)",
    )
    add_format_flag(parser)
    return parser


def _load_shape(args: argparse.Namespace) -> tuple[ModelShape, str]:
    if args.preset is not None:
        shape = load_preset(args.preset)
        key = args.preset.strip().lower()
        return shape, f"{key} (preset, {PRESET_SOURCES.get(key, 'shipped')})"
    return load_config(args.config), args.config


def _peak(args: argparse.Namespace) -> tuple[float, str]:
    """Peak FLOP/s of one GPU and a description of where it came from."""
    if args.peak_tflops is not None:
        return args.peak_tflops * 1e12, f"--peak-tflops {args.peak_tflops:g}"
    if args.gpu is None:
        raise InputError("give --gpu NAME or --peak-tflops TFLOP/S (dense peak of one GPU)")
    try:
        from toolkit.hardware.specs import get_spec  # lazy: only needed for --gpu
    except ModuleNotFoundError as exc:
        if exc.name not in ("toolkit.hardware.specs", "toolkit.hardware"):
            raise
        raise InputError(
            "--gpu lookup is unavailable (toolkit.hardware.specs is missing); "
            "pass --peak-tflops TFLOP/S instead"
        ) from None

    spec = get_spec(args.gpu)
    return spec.peak_flops(args.dtype), f"{spec.name} {args.dtype} dense"


def _utilization(args: argparse.Namespace, flops: TrainingFlops, peak: float) -> Utilization:
    if args.tokens_per_sec is not None:
        if args.step_time_ms is not None:
            raise InputError("give either --tokens-per-sec or --step-time-ms, not both")
        if args.tokens_per_step is not None:
            raise InputError("--tokens-per-step goes with --step-time-ms, not --tokens-per-sec")
        return utilization(
            args.tokens_per_sec,
            flops.model_per_token,
            peak,
            args.num_gpus,
            flops.hardware_per_token,
        )
    if args.step_time_ms is None:
        raise InputError(
            "give the measured throughput: --tokens-per-sec TOK/S (all GPUs) or "
            "--step-time-ms MS with --tokens-per-step TOKENS"
        )
    if args.tokens_per_step is None:
        raise InputError("--step-time-ms needs --tokens-per-step (tokens per step over all GPUs)")
    return utilization_from_step(
        args.step_time_ms / 1e3,
        args.tokens_per_step,
        flops.model_per_token,
        peak,
        args.num_gpus,
        flops.hardware_per_token,
    )


def compute(args: argparse.Namespace) -> Report:
    shape, label = _load_shape(args)
    params = count_params(shape)
    flops = training_flops(shape, args.seq_len, causal=args.causal, recompute=args.recompute)
    peak, peak_source = _peak(args)
    util = _utilization(args, flops, peak)
    warnings = []
    if args.seq_len > shape.max_position_embeddings:
        warnings.append(
            f"--seq-len {args.seq_len} exceeds the model's max_position_embeddings "
            f"{shape.max_position_embeddings}"
        )
    for name, value in (("MFU", util.mfu), ("HFU", util.hfu)):
        if value > 1:
            warnings.append(
                f"{name} {100 * value:.1f}% is above 100%: check that --tokens-per-sec is for all "
                "GPUs, --num-gpus, and that the peak is per GPU for the dtype in use"
            )
    return Report(
        model=label,
        model_type=shape.model_type,
        seq_len=args.seq_len,
        params=params,
        flops=flops,
        peak_source=peak_source,
        dtype=args.dtype,
        utilization=util,
        warnings=warnings,
    )


def render(report: Report) -> str:
    p, f, u = report.params, report.flops, report.utilization
    moe = f" ({fmt_num(p.active)} active per token)" if p.active != p.total else ""
    tflop = 1e12
    rows = [
        ("model", f"{report.model} [{report.model_type}]", ""),
        (
            "parameters",
            f"{fmt_num(p.total)}{moe}",
            f"embedding {fmt_num(p.embedding)}, lm_head "
            f"{fmt_num(p.lm_head) if p.lm_head else 'tied'}, "
            f"non-embedding {fmt_num(p.non_embedding)}",
        ),
        ("N (matmul params)", fmt_num(p.matmul_active), "active weights a token is multiplied by"),
        ("dense FLOPs/token", fmt_num(f.dense_per_token), f"6N = 6 x {p.matmul_active:,}"),
        (
            "attention FLOPs/token",
            fmt_num(f.attention_per_token),
            f"12*L*H*Q*T = 12 x {f.num_layers} x {f.num_heads} x {f.head_dim} x {f.seq_len}"
            + (" x 0.5 (causal)" if f.causal else ""),
        ),
        (
            "model FLOPs/token",
            fmt_num(f.model_per_token),
            f"forward {fmt_num(f.forward_per_token)} + backward {fmt_num(f.backward_per_token)}",
        ),
        (
            "hardware FLOPs/token",
            fmt_num(f.hardware_per_token),
            f"model + {fmt_num(f.recompute_per_token)} recompute ({f.recompute})",
        ),
        ("throughput", f"{fmt_num(u.tokens_per_sec)} tokens/s", f"over {u.num_gpus} GPU(s)"),
        (
            "achieved per GPU",
            f"{fmt_num(u.achieved_model_flops_per_gpu / tflop, 4)} TFLOP/s",
            f"{fmt_num(u.tokens_per_sec / u.num_gpus)} tokens/s/GPU x "
            f"{fmt_num(f.model_per_token)} FLOPs/token",
        ),
        ("peak per GPU", f"{fmt_num(u.peak_flops_per_gpu / tflop, 4)} TFLOP/s", report.peak_source),
        ("MFU", f"{100 * u.mfu:.2f}%", "achieved / peak (no recompute)"),
        (
            "HFU",
            f"{100 * u.hfu:.2f}%",
            f"{fmt_num(u.achieved_hardware_flops_per_gpu / tflop, 4)} TFLOP/s"
            " incl. recompute / peak",
        ),
    ]
    lines = [render_table(("quantity", "value", "arithmetic"), rows), "", *u.arithmetic]
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = compute(args)
    if args.format == "json":
        print_json(report)
    else:
        print(render(report))
    over = report.utilization.mfu > 1 or report.utilization.hfu > 1
    if over and args.format == "json":
        for warning in report.warnings:
            sys.stderr.write(f"warning: {warning}\n")
    return EXIT_FAILED if over else EXIT_OK


if __name__ == "__main__":
    run(main, prog=PROG)
