"""``python -m toolkit.compute memory|kv-cache|time|chinchilla``: planning estimates."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from toolkit import cli
from toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_format_flag,
    existing_file,
    positive_float,
    positive_int,
    print_json,
    render_table,
    run,
)
from toolkit.compute.activations import ATTENTION_KERNELS
from toolkit.compute.chinchilla import TOKENS_PER_PARAM, chinchilla
from toolkit.compute.flops import RECOMPUTE_MODES
from toolkit.compute.kv_cache import KV_DTYPE_BYTES, kv_cache
from toolkit.compute.memory import (
    DEFAULT_OVERHEAD_BYTES,
    FSDP_MODES,
    GIB,
    METHODS,
    MODES,
    OPTIMIZERS,
    PRECISIONS,
    Setup,
    estimate_memory,
)
from toolkit.compute.model_config import ModelShape, load_config, load_preset, preset_names
from toolkit.compute.time_to_train import train_time
from toolkit.errors import InputError
from toolkit.hardware.specs import get_spec

PROG = "python -m toolkit.compute"

DESCRIPTION = """\
Planning estimates for transformer training and inference.

  memory      per-GPU bytes: weights, gradients, optimizer states, activations, KV cache,
              framework overhead; total and a fit verdict (total <= 0.85 x GPU memory)
  kv-cache    KV cache bytes per token and for batch x context (GQA/MQA aware)
  time        training time: C = 6 N D FLOPs / (GPUs x peak FLOP/s x MFU)
  chinchilla  compute-optimal params N and tokens D (D = 20 N, C = 6 N D)

Exit codes: 0 ok (memory: fits or no --gpu), 1 memory does not fit, 2 bad input.
"""


def _add_model(parser: argparse.ArgumentParser, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--config",
        type=existing_file("--config"),
        metavar="PATH",
        help="Hugging Face config.json (model_type llama, mistral, qwen2, mixtral, gpt2, gpt_neox)",
    )
    group.add_argument(
        "--preset", metavar="NAME", help=f"shipped preset: {', '.join(preset_names())}"
    )


def _model(args: argparse.Namespace) -> ModelShape | None:
    if getattr(args, "config", None) is not None:
        return load_config(args.config)
    if getattr(args, "preset", None) is not None:
        return load_preset(args.preset)
    return None


def _gib(n: float) -> str:
    return f"{n / GIB:,.2f}"


# ----------------------------------------------------------------------------- memory


def _memory_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "memory",
        help="per-GPU memory (bytes) of training or inference, with a fit verdict",
        description=(
            "Per-GPU memory in bytes, every component with its formula.\n\n"
            "Model states per parameter (bytes): fp32 4 weight + 4 grad; bf16-mixed/fp16-mixed\n"
            "2 + 2 + 4 fp32 master; pure bf16 2 + 2 (optimizer states in bf16). AdamW/Adam 2\n"
            "states, SGD 1 (momentum), adam8bit 2 x 1 byte + fp32 absmax per 256, Adafactor\n"
            "factored (rows + cols per matrix). ZeRO 1 shards optimizer states, 2 also grads,\n"
            "3 also weights over --gpus; FSDP full = all over --gpus, hybrid = within a node.\n"
            "Activations: Korthikanti et al. 2022, per layer sbh(34 + 5as/h) bytes (none),\n"
            "34 sbh (selective), 2 sbh (full) at 16-bit, s tokens, b micro-batch, h hidden, a heads.\n"
            "GQA (q, kv widths), SwiGLU (4i kept per token) and MoE widen those terms; --attention\n"
            "flash drops the s^2 term (fp32 log-sum-exp instead).\n"
            "Fit: total <= 0.85 x GPU memory. Exit 0 fits / no --gpu, 1 does not fit, 2 bad input."
        ),
    )
    _add_model(p)
    p.add_argument(
        "--mode", choices=MODES, default="train", help="train (default) or inference (KV cache)"
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="full",
        help="full fine-tune/pretrain, lora, qlora (4-bit NF4 base)",
    )
    p.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="bf16-mixed",
        help="fp32, bf16-mixed (default), fp16-mixed (both with fp32 master weights), bf16 (pure)",
    )
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adamw",
        help="adamw (default), adam, sgd (with momentum), adam8bit, adafactor",
    )
    p.add_argument(
        "--zero-stage",
        type=int,
        choices=(0, 1, 2, 3),
        default=0,
        help="DeepSpeed ZeRO stage (default 0)",
    )
    p.add_argument(
        "--fsdp",
        choices=FSDP_MODES,
        default=None,
        help="FSDP sharding: full (over all GPUs) or hybrid (within a node)",
    )
    p.add_argument(
        "--gpus", type=positive_int("--gpus"), default=1, help="data-parallel GPUs (default 1)"
    )
    p.add_argument(
        "--gpus-per-node",
        type=positive_int("--gpus-per-node"),
        default=8,
        help="GPUs per node, for --fsdp hybrid (default 8)",
    )
    p.add_argument(
        "--micro-batch",
        type=positive_int("--micro-batch"),
        default=1,
        help="sequences per GPU per step (default 1)",
    )
    p.add_argument(
        "--seq-len",
        type=positive_int("--seq-len"),
        default=2048,
        help="tokens per sequence; inference: context length for the KV cache (default 2048)",
    )
    p.add_argument(
        "--recompute",
        choices=RECOMPUTE_MODES,
        default="none",
        help="activation checkpointing: none (default), selective, full",
    )
    p.add_argument(
        "--attention",
        choices=ATTENTION_KERNELS,
        default="eager",
        help="eager (default; stores the s x s softmax, as in the paper) or flash (does not)",
    )
    p.add_argument(
        "--no-dropout",
        action="store_true",
        help="no dropout masks (the paper's formula counts them)",
    )
    p.add_argument(
        "--lora-rank",
        type=positive_int("--lora-rank"),
        default=None,
        help="LoRA rank r (default 8; lora/qlora only)",
    )
    p.add_argument(
        "--lora-targets",
        default=None,
        metavar="LIST",
        help="comma-separated module names (default: PEFT defaults, e.g. q_proj,v_proj), or all-linear",
    )
    p.add_argument(
        "--no-double-quant",
        action="store_true",
        help="QLoRA without double quantization (fp32 absmax per 64 weights)",
    )
    p.add_argument(
        "--kv-dtype",
        choices=tuple(KV_DTYPE_BYTES),
        default=None,
        help="inference KV cache dtype (default: bf16, fp32 with --precision fp32)",
    )
    p.add_argument(
        "--overhead-gib",
        type=cli.non_negative_float("--overhead-gib"),
        default=DEFAULT_OVERHEAD_BYTES / GIB,
        help="assumed framework overhead per GPU in GiB (default 1)",
    )
    p.add_argument(
        "--gpu",
        metavar="NAME",
        help="GPU for the fit verdict: spec key (h100-sxm, a100-sxm-80gb) or name",
    )
    add_format_flag(p)


def _memory(args: argparse.Namespace) -> int:
    shape = _model(args)
    targets = None
    if args.lora_targets is not None:
        targets = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
        if not targets:
            raise InputError("--lora-targets is empty; expected module names like q_proj,v_proj")
    setup = Setup(
        mode=args.mode,
        method=args.method,
        precision=args.precision,
        optimizer=args.optimizer,
        zero_stage=args.zero_stage,
        fsdp=args.fsdp,
        num_gpus=args.gpus,
        gpus_per_node=args.gpus_per_node,
        micro_batch=args.micro_batch,
        seq_len=args.seq_len,
        recompute=args.recompute,
        attention=args.attention,
        dropout=not args.no_dropout,
        lora_rank=args.lora_rank,
        lora_targets=targets,
        double_quant=not args.no_double_quant,
        kv_dtype=args.kv_dtype,
        overhead_bytes=round(args.overhead_gib * GIB),
    )
    gpu_name = gpu_mem = None
    if args.gpu:
        spec = get_spec(args.gpu)
        gpu_name, gpu_mem = f"{spec.name} ({spec.key}, {spec.memory_gib:g} GiB)", spec.memory_bytes
    est = estimate_memory(shape, setup, gpu_name, gpu_mem)
    if args.format == "json":
        print_json(
            {
                "model": est.model,
                "setup": est.setup,
                "params": est.params,
                "trainable_params": est.trainable_params,
                "bytes": est.bytes,
                "formulas": {c.name: c.formula for c in est.components},
                "gpu": est.gpu,
                "gpu_memory_bytes": est.gpu_memory_bytes,
                "usable_bytes": est.usable_bytes,
                "fits": est.fits,
                "verdict": est.verdict,
                "assumptions": est.assumptions,
            }
        )
    else:
        s = est.setup
        print(
            f"model: {est.model}  params {est.params:,}  trainable {est.trainable_params:,}\n"
            f"{s.mode}, method {s.method}, precision {s.precision}, optimizer {s.optimizer}, "
            f"gpus {s.num_gpus}, micro-batch {s.micro_batch}, seq-len {s.seq_len}, "
            f"recompute {s.recompute}\n"
        )
        rows = [
            [c.name, f"{c.bytes_per_gpu:,}", _gib(c.bytes_per_gpu), c.formula]
            for c in est.components
        ]
        rows.append(
            ["total_per_gpu", f"{est.total_per_gpu_bytes:,}", _gib(est.total_per_gpu_bytes), "sum"]
        )
        print(render_table(["component", "bytes/GPU", "GiB", "formula"], rows))
        print(f"\n{est.verdict}\n\nassumptions:")
        for a in est.assumptions:
            print(f"  - {a}")
    return EXIT_FAILED if est.fits is False else EXIT_OK


# ----------------------------------------------------------------------------- kv-cache


def _kv_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kv-cache",
        help="KV cache bytes per token and for batch x context",
        description=(
            "KV cache size: 2 (K, V) x layers x kv_heads x head_dim x bytes per element per token,\n"
            "x batch x context for the total. kv_heads = num_key_value_heads (GQA/MQA aware)."
        ),
    )
    _add_model(p)
    p.add_argument("--batch", type=positive_int("--batch"), default=1, help="sequences (default 1)")
    p.add_argument(
        "--context",
        type=positive_int("--context"),
        default=None,
        help="tokens per sequence (default: max_position_embeddings)",
    )
    p.add_argument(
        "--kv-dtype",
        choices=tuple(KV_DTYPE_BYTES),
        default="bf16",
        help="cache element type: bytes fp32 4, bf16/fp16 2, fp8/int8 1, int4 0.5 (default bf16)",
    )
    add_format_flag(p)


def _kv(args: argparse.Namespace) -> int:
    shape = _model(args)
    context = args.context or shape.max_position_embeddings
    kv = kv_cache(shape, args.batch, context, args.kv_dtype)
    if args.format == "json":
        print_json({"model": shape.source, **{k: v for k, v in vars(kv).items()}})
    else:
        print(f"model: {shape.source}")
        print(f"bytes_per_token: {kv.bytes_per_token:,} B")
        print(
            f"total for batch {kv.batch} x context {kv.context_tokens}: {kv.total_bytes:,} B = {_gib(kv.total_bytes)} GiB"
        )
        print(f"formula: {kv.formula}")
    return EXIT_OK


# ----------------------------------------------------------------------------- time


def _time_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "time",
        help="training time: 6 N D FLOPs / (GPUs x peak x MFU)",
        description=(
            "Training compute C = 6 N D FLOPs (N = matmul-active params: active experts only for\n"
            "MoE; D tokens), plus 12 L H Q T per token of attention with --seq-len; time =\n"
            "C / (GPUs x peak FLOP/s x MFU). Peak from --gpu and --dtype (dense), or --peak-tflops."
        ),
    )
    _add_model(p, required=False)
    p.add_argument(
        "--params",
        type=positive_float("--params"),
        default=None,
        help="N, parameters (instead of --preset/--config)",
    )
    p.add_argument(
        "--tokens",
        type=positive_float("--tokens"),
        required=True,
        help="D, training tokens (e.g. 1.5e13)",
    )
    p.add_argument("--gpus", type=positive_int("--gpus"), default=1, help="GPUs (default 1)")
    p.add_argument("--gpu", metavar="NAME", help="GPU spec key or name for the dense peak")
    p.add_argument("--dtype", default="bf16", help="dtype of the peak (default bf16)")
    p.add_argument(
        "--peak-tflops",
        type=positive_float("--peak-tflops"),
        default=None,
        help="peak TFLOP/s per GPU (instead of --gpu)",
    )
    p.add_argument(
        "--mfu",
        type=cli.fraction("--mfu"),
        default=0.4,
        help="model FLOPs utilization, fraction (default 0.4)",
    )
    p.add_argument(
        "--seq-len",
        type=positive_int("--seq-len"),
        default=None,
        help="tokens per sequence: adds the attention term (model only)",
    )
    add_format_flag(p)


def _time(args: argparse.Namespace) -> int:
    if (args.gpu is None) == (args.peak_tflops is None):
        raise InputError("give exactly one of --gpu NAME or --peak-tflops")
    if args.gpu:
        spec = get_spec(args.gpu)
        peak, peak_src = spec.peak_flops(args.dtype), f"{spec.name} dense {args.dtype}"
    else:
        peak, peak_src = args.peak_tflops * 1e12, "--peak-tflops"
    shape = _model(args)
    t = train_time(
        args.tokens,
        peak,
        args.gpus,
        args.mfu,
        params=args.params,
        shape=shape,
        seq_len=args.seq_len,
    )
    if args.format == "json":
        print_json({"peak_source": peak_src, **vars(t)})
    else:
        print(f"peak: {peak / 1e12:g} TFLOP/s per GPU ({peak_src})")
        for line in t.arithmetic:
            print(line)
    return EXIT_OK


# ----------------------------------------------------------------------------- chinchilla


def _chinchilla_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chinchilla",
        help="compute-optimal N and D from one of C, N, D (D = 20 N, C = 6 N D)",
        description=(
            "Compute-optimal point (Hoffmann et al. 2022): D = 20 N tokens, C = 6 N D FLOPs.\n"
            "Give exactly one of --compute (FLOPs), --params (N), --tokens (D)."
        ),
    )
    p.add_argument(
        "--compute",
        type=positive_float("--compute"),
        default=None,
        help="C, training FLOPs (e.g. 5.88e23)",
    )
    p.add_argument(
        "--params", type=positive_float("--params"), default=None, help="N, parameters (e.g. 70e9)"
    )
    p.add_argument(
        "--tokens", type=positive_float("--tokens"), default=None, help="D, tokens (e.g. 1.4e12)"
    )
    p.add_argument(
        "--tokens-per-param",
        type=positive_float("--tokens-per-param"),
        default=TOKENS_PER_PARAM,
        help="tokens per parameter at the optimum (default 20)",
    )
    add_format_flag(p)


def _chinchilla(args: argparse.Namespace) -> int:
    pt = chinchilla(args.compute, args.params, args.tokens, args.tokens_per_param)
    if args.format == "json":
        print_json(pt)
    else:
        print(
            f"C = {pt.compute_flops:.4g} FLOPs, N = {pt.params:.4g} params, D = {pt.tokens:.4g} tokens"
        )
        print(f"formula: {pt.formula}")
    return EXIT_OK


# ----------------------------------------------------------------------------- entry


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{memory,kv-cache,time,chinchilla}"
    )
    _memory_parser(sub)
    _kv_parser(sub)
    _time_parser(sub)
    _chinchilla_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"memory": _memory, "kv-cache": _kv, "time": _time, "chinchilla": _chinchilla}
    return handler[args.command](args)


if __name__ == "__main__":
    run(main, prog=PROG)
