"""Per-GPU memory estimate for training (full, LoRA, QLoRA) or inference, with a fit verdict.

Model states per parameter (ZeRO paper, Rajbhandari et al. 2019, section 3.1): mixed-precision
Adam keeps 2 bytes of 16-bit weights, 2 of 16-bit gradients and 12 of optimizer states (fp32
master weights, momentum, variance): 16 bytes/param. ZeRO stage 1 shards the optimizer states
over N data-parallel GPUs, stage 2 also the gradients, stage 3 also the weights. FSDP ``full``
shards all three over N (like stage 3); ``hybrid`` shards within a node of ``gpus_per_node``
GPUs and replicates across nodes.

Precisions (bytes per parameter: weight / gradient / fp32 master / optimizer-state element):

- ``fp32``: 4 / 4 / 0 / 4
- ``bf16-mixed``, ``fp16-mixed``: 2 / 2 / 4 / 4 (master weights count as optimizer state)
- ``bf16`` (pure): 2 / 2 / 0 / 2 (torch optimizers create states in the parameter dtype)

Optimizers (state elements per trainable parameter): AdamW/Adam 2 (momentum, variance); SGD 1
(momentum; SGD without momentum has none); 8-bit Adam 2 one-byte states plus one fp32 absmax per
256-element block (bitsandbytes blockwise); Adafactor a factored second moment, ``rows + cols``
values per matrix and the full size for vectors, no first moment (``beta1=None``).

Activations: :mod:`toolkit.compute.activations`; KV cache: :mod:`toolkit.compute.kv_cache`.
Fit rule: fits when ``total_per_gpu <= 0.85 x GPU memory``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from toolkit.compute.activations import ATTENTION_KERNELS, activation_bytes
from toolkit.compute.flops import RECOMPUTE_MODES
from toolkit.compute.kv_cache import kv_cache
from toolkit.compute.lora import (
    LoraCount,
    linear_layers,
    lora_params,
    matrix_shapes,
    nf4_bytes_per_param,
    quantizable_params,
)
from toolkit.compute.model_config import ModelShape, count_params
from toolkit.errors import InputError

GIB = 1024**3
HEADROOM = 0.85
#: Assumed fixed per-GPU overhead: CUDA context, cuBLAS/NCCL workspaces, allocator slack.
DEFAULT_OVERHEAD_BYTES = 1 * GIB
#: bitsandbytes 8-bit optimizers: one fp32 absmax per block of this many state elements.
ADAM8BIT_BLOCK = 256

#: What each optimizer is assumed to keep, stated in the output.
OPTIMIZER_NOTES: dict[str, str] = {
    "adamw": "AdamW: momentum and variance per trainable parameter",
    "adam": "Adam: momentum and variance per trainable parameter",
    "sgd": "SGD with momentum: one buffer per trainable parameter (none without momentum)",
    "adam8bit": (
        "8-bit Adam (bitsandbytes blockwise): two 1-byte states + one fp32 absmax per 256 "
        "elements; bitsandbytes keeps tensors under 4096 elements in 32-bit (not modelled)"
    ),
    "adafactor": (
        "Adafactor without first moment (beta1=None): factored second moment, rows + cols "
        "values per matrix, full size for vectors"
    ),
}

METHODS = ("full", "lora", "qlora")
MODES = ("train", "inference")
OPTIMIZERS = ("adamw", "adam", "sgd", "adam8bit", "adafactor")
FSDP_MODES = ("full", "hybrid")


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter of each model state, and per activation element."""

    name: str
    weight_bytes: int
    grad_bytes: int
    master_bytes: int
    state_bytes: int
    activation_bytes: int


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", 4, 4, 0, 4, 4),
    "bf16-mixed": Precision("bf16-mixed", 2, 2, 4, 4, 2),
    "fp16-mixed": Precision("fp16-mixed", 2, 2, 4, 4, 2),
    "bf16": Precision("bf16", 2, 2, 0, 2, 2),
}


@dataclass(frozen=True)
class Setup:
    """What is being run. Sizes: ``micro_batch`` sequences, ``seq_len`` tokens per sequence."""

    mode: str = "train"
    method: str = "full"
    precision: str = "bf16-mixed"
    optimizer: str = "adamw"
    zero_stage: int = 0
    fsdp: str | None = None
    num_gpus: int = 1
    gpus_per_node: int = 8
    micro_batch: int = 1
    seq_len: int = 2048
    recompute: str = "none"
    attention: str = "eager"
    dropout: bool = True
    lora_rank: int | None = None
    lora_targets: tuple[str, ...] | None = None
    double_quant: bool = True
    kv_dtype: str | None = None
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES


@dataclass(frozen=True)
class Component:
    """One memory component: bytes on each GPU and the formula with its numbers."""

    name: str
    bytes_per_gpu: int
    formula: str


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimate. ``bytes`` maps component name to bytes per GPU, plus ``total_per_gpu``."""

    model: str
    setup: Setup
    params: int
    trainable_params: int
    components: list[Component]
    bytes: dict[str, int]
    total_per_gpu_bytes: int
    gpu: str | None
    gpu_memory_bytes: int | None
    usable_bytes: int | None  # 0.85 x GPU memory
    fits: bool | None
    verdict: str
    assumptions: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- validation


def validate(setup: Setup) -> None:
    """Reject impossible or contradictory settings with an :class:`InputError` naming the flag."""
    choices = (
        ("--mode", setup.mode, MODES),
        ("--method", setup.method, METHODS),
        ("--precision", setup.precision, tuple(PRECISIONS)),
        ("--optimizer", setup.optimizer, OPTIMIZERS),
        ("--recompute", setup.recompute, RECOMPUTE_MODES),
        ("--attention", setup.attention, ATTENTION_KERNELS),
    )
    for flag, value, allowed in choices:
        if value not in allowed:
            raise InputError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")
    for flag, value in (
        ("--gpus", setup.num_gpus),
        ("--gpus-per-node", setup.gpus_per_node),
        ("--micro-batch", setup.micro_batch),
        ("--seq-len", setup.seq_len),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{flag} must be a positive integer, got {value!r}")
    if setup.overhead_bytes < 0:
        raise InputError(f"--overhead-gib must be >= 0, got {setup.overhead_bytes / GIB:g}")
    if setup.zero_stage not in (0, 1, 2, 3):
        raise InputError(f"--zero-stage must be 0, 1, 2 or 3, got {setup.zero_stage!r}")
    if setup.fsdp is not None and setup.fsdp not in FSDP_MODES:
        raise InputError(f"--fsdp must be one of {', '.join(FSDP_MODES)}, got {setup.fsdp!r}")
    if setup.fsdp is not None and setup.zero_stage:
        raise InputError(
            f"--fsdp {setup.fsdp} with --zero-stage {setup.zero_stage}: FSDP and DeepSpeed ZeRO "
            "are alternatives; choose one"
        )
    sharded = setup.zero_stage > 0 or setup.fsdp is not None
    if sharded and setup.mode == "inference":
        raise InputError("--zero-stage/--fsdp apply to training only, not --mode inference")
    if sharded and setup.num_gpus < 2:
        what = f"--fsdp {setup.fsdp}" if setup.fsdp else f"--zero-stage {setup.zero_stage}"
        raise InputError(
            f"{what} shards over data-parallel GPUs and needs --gpus >= 2, got --gpus 1"
        )
    if setup.fsdp == "hybrid":
        group = min(setup.gpus_per_node, setup.num_gpus)
        if setup.num_gpus % group:
            raise InputError(
                f"--fsdp hybrid: --gpus {setup.num_gpus} is not a multiple of "
                f"--gpus-per-node {setup.gpus_per_node}"
            )
    adapters = setup.method in ("lora", "qlora")
    if setup.lora_rank is not None and not adapters:
        raise InputError(f"--lora-rank needs --method lora or qlora, got --method {setup.method}")
    if setup.lora_targets and not adapters:
        raise InputError(
            f"--lora-targets needs --method lora or qlora, got --method {setup.method}"
        )
    if setup.method == "lora" and setup.mode == "inference":
        raise InputError(
            "--method lora is a training method; for --mode inference use --method full "
            "(weights in --precision) or --method qlora (4-bit NF4 weights)"
        )
    if setup.mode == "inference" and (setup.lora_rank is not None or setup.lora_targets):
        raise InputError("--lora-rank/--lora-targets apply to training only, not --mode inference")


# ----------------------------------------------------------------------------- helpers


def _shard_factor(setup: Setup) -> tuple[int, int, int, str]:
    """Divisors for (weights, gradients, optimizer states) and a description."""
    n = setup.num_gpus
    if setup.fsdp == "full":
        return n, n, n, f"FSDP full sharding: weights, gradients, optimizer states / {n} GPUs"
    if setup.fsdp == "hybrid":
        g = min(setup.gpus_per_node, n)
        return (
            g,
            g,
            g,
            (
                f"FSDP hybrid sharding: all states / {g} GPUs per node, replicated over "
                f"{n // g} node(s)"
            ),
        )
    s = setup.zero_stage
    w, g, o = (n if s >= 3 else 1), (n if s >= 2 else 1), (n if s >= 1 else 1)
    what = {
        0: "ZeRO stage 0: nothing sharded (plain data parallel)",
        1: f"ZeRO stage 1: optimizer states / {n} GPUs",
        2: f"ZeRO stage 2: optimizer states and gradients / {n} GPUs",
        3: f"ZeRO stage 3: optimizer states, gradients and weights / {n} GPUs",
    }[s]
    return w, g, o, what


def _div(total: float, n: int) -> int:
    return math.ceil(total / n)


def _optimizer_state_bytes(
    setup: Setup,
    prec: Precision,
    trainable: int,
    matrices: list[tuple[int, int, int]],
    vectors: int,
) -> tuple[float, str]:
    """Optimizer state bytes (fp32 master weights included) for ``trainable`` parameters."""
    master = prec.master_bytes * trainable
    master_txt = f"{prec.master_bytes}*{trainable:,} master + " if prec.master_bytes else ""
    opt = setup.optimizer
    if opt in ("adamw", "adam"):
        states = 2 * prec.state_bytes * trainable
        txt = f"2 states*{prec.state_bytes} B*{trainable:,}"
    elif opt == "sgd":
        states = prec.state_bytes * trainable
        txt = f"1 momentum*{prec.state_bytes} B*{trainable:,}"
    elif opt == "adam8bit":
        per = 2 * (1 + 4 / ADAM8BIT_BLOCK)
        states = per * trainable
        txt = f"2 states*(1 B + 4 B/{ADAM8BIT_BLOCK})*{trainable:,} = {per:g} B/param"
    else:  # adafactor
        factored = sum((r + c) * n for r, c, n in matrices) + vectors
        states = prec.state_bytes * factored
        txt = (
            f"{prec.state_bytes} B*(sum (rows+cols) per matrix + vectors) = "
            f"{prec.state_bytes}*{factored:,}"
        )
    total = master + states
    return total, f"{master_txt}{txt} = {total:,.0f} B"


# ----------------------------------------------------------------------------- estimate


def estimate_memory(
    shape: ModelShape,
    setup: Setup,
    gpu_name: str | None = None,
    gpu_memory_bytes: int | None = None,
) -> MemoryEstimate:
    """Per-GPU bytes of every component, the total and (with a GPU) the 0.85-headroom verdict."""
    validate(setup)
    prec = PRECISIONS[setup.precision]
    counts = count_params(shape)
    total = counts.total
    assumptions: list[str] = []
    comps: list[Component] = []
    w_div, g_div, o_div, shard_txt = (1, 1, 1, "inference: weights replicated on every GPU")
    if setup.mode == "train":
        w_div, g_div, o_div, shard_txt = _shard_factor(setup)
    assumptions.append(shard_txt)
    if prec.master_bytes:
        assumptions.append(
            f"{prec.name}: ZeRO-paper layout, 16-bit weights and gradients, fp32 master weights "
            "counted as optimizer state; torch.autocast instead keeps fp32 weights and gradients "
            "(4 + 4 + 8 B/param for AdamW: same total, different split under ZeRO sharding)"
        )

    # --- trainable parameters and their matrix shapes (for Adafactor)
    if setup.mode == "inference":
        trainable, matrices, vectors = 0, [], 0
    elif setup.method == "full":
        trainable = total
        matrices, vectors = matrix_shapes(shape)
    else:
        lora = lora_params(shape, setup.lora_rank or 8, setup.lora_targets)
        trainable = lora.params
        vectors = 0
        matrices = _lora_matrices(shape, lora)  # A (rank x in), B (out x rank)
        assumptions.append(
            "LoRA/QLoRA activations use the full-training formula, an upper bound: frozen linear "
            "layers without adapters keep no input (bench/memory_accuracy.py: 1.3-1.4x over)"
        )
        if setup.lora_rank is None:
            assumptions.append("LoRA rank 8 (default; set --lora-rank)")
        assumptions.append(
            f"LoRA targets {', '.join(lora.targets)} -> modules {', '.join(lora.matched)}; "
            f"adapters: {lora.formula}"
        )

    # --- weights
    if setup.method == "qlora":
        q = quantizable_params(shape)
        per = nf4_bytes_per_param(setup.double_quant)
        rest = total - q
        base = q * per + rest * prec.weight_bytes
        quant_txt = (
            "8/64 + 32/(64*256) = 0.127 bits/param (double quantization)"
            if setup.double_quant
            else "32/64 = 0.5 bits/param (one fp32 absmax per 64)"
        )
        assumptions.append(
            f"QLoRA: {q:,} block linear weights in NF4 at 4 bits + constants {quant_txt} = "
            f"{per:.6g} B/param; embeddings, lm_head, norms, biases ({rest:,} params) in "
            f"{prec.weight_bytes}-byte compute dtype"
        )
        w_bytes = base + trainable * prec.weight_bytes
        w_txt = f"{q:,}*{per:.6g} (NF4) + {rest:,}*{prec.weight_bytes}"
        if trainable:
            w_txt += f" + {trainable:,} adapters*{prec.weight_bytes}"
    elif setup.method == "lora":
        w_bytes = (total + trainable) * prec.weight_bytes
        w_txt = f"({total:,} frozen + {trainable:,} adapters)*{prec.weight_bytes} B"
    else:
        w_bytes = total * prec.weight_bytes
        w_txt = f"{total:,} params*{prec.weight_bytes} B"
    comps.append(
        Component(
            "weights", _div(w_bytes, w_div), f"{w_txt}" + (f" / {w_div}" if w_div > 1 else "")
        )
    )

    if setup.mode == "train":
        g_bytes = trainable * prec.grad_bytes
        comps.append(
            Component(
                "gradients",
                _div(g_bytes, g_div),
                f"{trainable:,} trainable*{prec.grad_bytes} B"
                + (f" / {g_div}" if g_div > 1 else ""),
            )
        )
        o_bytes, o_txt = _optimizer_state_bytes(setup, prec, trainable, matrices, vectors)
        assumptions.append(OPTIMIZER_NOTES[setup.optimizer])
        comps.append(
            Component(
                "optimizer_states",
                _div(o_bytes, o_div),
                o_txt + (f" / {o_div}" if o_div > 1 else ""),
            )
        )
        act = activation_bytes(
            shape,
            setup.seq_len,
            setup.micro_batch,
            setup.recompute,
            prec.activation_bytes,
            setup.dropout,
            setup.attention,
        )
        comps.append(Component("activations", act.total_bytes, act.formula))
        assumptions.append(
            "activations: Korthikanti et al. 2022 table 2 (GPT block: 4h GELU MLP, multi-head "
            "attention, no tensor/sequence parallelism), its terms widened for GQA (q, kv widths), "
            "SwiGLU (4i kept per token) and MoE (experts per token); unfused RMSNorm "
            "implementations keep more, transient logits/gradient buffers are not counted"
        )
        if w_div > 1:
            per_layer = (counts.attention + counts.mlp + counts.router) / shape.num_layers
            buf = 2 * per_layer * prec.weight_bytes
            comps.append(
                Component(
                    "gather_buffers",
                    math.ceil(buf),
                    f"2 layers (current + prefetched) * {per_layer:,.0f} params/layer * "
                    f"{prec.weight_bytes} B = {buf:,.0f} B",
                )
            )
            assumptions.append("ZeRO-3/FSDP: all-gathered full weights of 2 layers at a time")
    else:
        dtype = setup.kv_dtype or ("fp32" if prec.activation_bytes == 4 else "bf16")
        kv = kv_cache(shape, setup.micro_batch, setup.seq_len, dtype)
        comps.append(Component("kv_cache", kv.total_bytes, kv.formula))
        e = prec.activation_bytes
        h, i = shape.hidden_size, shape.intermediate_size
        work = setup.micro_batch * setup.seq_len * (4 * h + 2 * i) * e
        logits = setup.micro_batch * shape.vocab_size * 4
        comps.append(
            Component(
                "activations",
                work + logits,
                f"prefill working set of one layer b*s*(4h+2i)*e = {setup.micro_batch}*"
                f"{setup.seq_len}*(4*{h}+2*{i})*{e} + last-token fp32 logits 4*b*V = "
                f"{work + logits:,} B",
            )
        )
        assumptions.append(
            "inference activations: one layer's prefill working set (residual, normed input, "
            "attention output, MLP up/gate) plus fp32 logits of the last position; an assumption, "
            "not Korthikanti's training formula"
        )

    comps.append(
        Component(
            "framework_overhead",
            setup.overhead_bytes,
            f"assumed {setup.overhead_bytes / GIB:g} GiB: CUDA context + cuBLAS/NCCL workspaces"
            " + allocator slack (--overhead-gib)",
        )
    )
    assumptions.append(
        f"framework overhead {setup.overhead_bytes / GIB:g} GiB per GPU is an assumption "
        "(CUDA context ~0.3-0.6 GiB, cuBLAS/NCCL workspaces, caching-allocator slack), not derived"
    )
    if setup.seq_len > shape.max_position_embeddings:
        assumptions.append(
            f"--seq-len {setup.seq_len} exceeds max_position_embeddings "
            f"{shape.max_position_embeddings} of the config"
        )

    by_name = {c.name: c.bytes_per_gpu for c in comps}
    total_bytes = sum(by_name.values())
    by_name["total_per_gpu"] = total_bytes
    fits, usable, verdict = None, None, "no GPU named (--gpu): no fit verdict"
    if gpu_memory_bytes is not None:
        usable = int(HEADROOM * gpu_memory_bytes)
        fits = total_bytes <= usable
        verdict = (
            f"{'FITS' if fits else 'DOES NOT FIT'} on {gpu_name}: {total_bytes / GIB:.2f} GiB "
            f"{'<=' if fits else '>'} 0.85 x {gpu_memory_bytes / GIB:g} GiB = {usable / GIB:.2f} GiB"
        )
    return MemoryEstimate(
        model=shape.source,
        setup=setup,
        params=total,
        trainable_params=trainable,
        components=comps,
        bytes=by_name,
        total_per_gpu_bytes=total_bytes,
        gpu=gpu_name,
        gpu_memory_bytes=gpu_memory_bytes,
        usable_bytes=usable,
        fits=fits,
        verdict=verdict,
        assumptions=assumptions,
    )


def _lora_matrices(shape: ModelShape, lora: LoraCount) -> list[tuple[int, int, int]]:
    """LoRA A (rank x in) and B (out x rank) matrices of the matched modules."""
    out = []
    for layer in linear_layers(shape):
        if layer.name in lora.matched:
            out.append((lora.rank, layer.in_features, layer.count))
            out.append((layer.out_features, lora.rank, layer.count))
    return out
