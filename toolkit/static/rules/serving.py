"""LC9xx: inference servers (vLLM, SGLang), sampling parameters, reproducibility."""

from __future__ import annotations

import ast
import re

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, has_star_kwargs, kwarg
from toolkit.static.rules._common import backward_events, is_true

SERVE = ("vllm", "sglang")


@rule(
    "LC901",
    "gpu-memory-no-headroom",
    "warning",
    SERVE,
    """Flags vLLM ``gpu_memory_utilization`` or SGLang ``mem_fraction_static`` at 0.95 or more.
    The engine pre-allocates that fraction for weights and KV cache; CUDA graphs, NCCL buffers,
    the sampler and any other process on the GPU need the rest, so start-up or the first large
    batch fails with OOM.""",
    "use 0.85-0.9 and raise it only after measuring peak memory",
)
def mem_headroom(mod: ModuleFacts):
    src = mod.source
    if (
        "gpu-memory-utilization" not in src
        and "mem-fraction-static" not in src
        and ("gpu_memory_utilization" not in src and "mem_fraction_static" not in src)
    ):
        return
    flags = ("--gpu-memory-utilization", "--mem-fraction-static")
    for seq in mod.nodes(ast.List, ast.Tuple):
        vals = [mod.value_of(e, None) for e in seq.elts]
        for i, v in enumerate(vals[:-1]):
            if v in flags:
                try:
                    frac = float(vals[i + 1])  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    continue
                if frac >= 0.95:
                    yield Hit(seq, f"{v} {vals[i + 1]} leaves no memory headroom")
    for node in mod.nodes(ast.Constant):
        if isinstance(node.value, str) and any(f in node.value for f in flags):
            m = re.search(
                r"--(gpu-memory-utilization|mem-fraction-static)[ =]([0-9.]+)", node.value
            )
            if m and float(m.group(2) or 0) >= 0.95:
                yield Hit(node, f"--{m.group(1)} {m.group(2)} leaves no memory headroom")
    for c in mod.calls_with_kw("gpu_memory_utilization", "mem_fraction_static"):
        for k in ("gpu_memory_utilization", "mem_fraction_static"):
            v = mod.value_of(kwarg(c, k), None)
            if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0.95:
                yield Hit(c, f"{k}={v} leaves no memory headroom")


def _sampling_calls(mod: ModuleFacts):
    return (
        mod.calls_q("SamplingParams") + mod.calls_attr("generate") + mod.calls_q("GenerationConfig")
    )


@rule(
    "LC902",
    "sampling-params-cancel",
    "warning",
    SERVE + ("transformers",),
    """Flags sampling parameters that cancel each other: ``temperature=0`` (greedy) together with
    ``top_p``/``top_k``/``min_p``, or ``do_sample=False`` together with ``temperature``/``top_p``/
    ``top_k``. The sampling knobs are ignored, so the decoding is not the one the config
    describes (and results differ from what was reported).""",
    "either sample (temperature > 0, do_sample=True) with top_p/top_k, or decode greedily without them",
)
def sampling_cancel(mod: ModuleFacts):
    for c in _sampling_calls(mod):
        temp = mod.value_of(kwarg(c, "temperature"), None)
        knobs = [k for k in ("top_p", "top_k", "min_p") if kwarg(c, k) is not None]
        active = []
        for k in knobs:
            v = mod.value_of(kwarg(c, k), None)
            if (
                (k == "top_p" and v not in (1, 1.0))
                or (k == "top_k" and v not in (-1, 0, None))
                or (k == "min_p" and v not in (0, 0.0))
            ):
                active.append(k)
        if temp == 0 and active:
            yield Hit(c, f"temperature=0 (greedy) makes {active} ineffective")
        elif mod.value_of(kwarg(c, "do_sample"), None) is False and (
            active or (isinstance(temp, int | float) and temp not in (0, 1, 1.0))
        ):
            yield Hit(
                c,
                f"do_sample=False ignores {active + (['temperature'] if temp is not None else [])}",
            )


@rule(
    "LC903",
    "sampling-with-zero-temperature",
    "error",
    ("transformers",),
    """Flags ``do_sample=True`` with ``temperature=0``. Transformers raises ``ValueError``
    ("temperature has to be a strictly positive float"); the intent was greedy decoding.""",
    "use do_sample=False for greedy decoding, or a positive temperature",
)
def zero_temp(mod: ModuleFacts):
    for c in _sampling_calls(mod):
        if is_true(mod, kwarg(c, "do_sample")) and mod.value_of(kwarg(c, "temperature"), None) == 0:
            yield Hit(c, "do_sample=True with temperature=0")


@rule(
    "LC904",
    "sampling-params-default-max-tokens",
    "warning",
    ("vllm",),
    """Flags vLLM ``SamplingParams(...)`` without ``max_tokens``. The default is 16 tokens, so
    every completion is silently truncated and evaluations score cut-off answers.""",
    "pass max_tokens=... explicitly",
)
def vllm_max_tokens(mod: ModuleFacts):
    given_beside = {  # `client.generate(prompts, max_tokens=32, sampling_params=SamplingParams())`
        id(a)
        for outer in mod.all_calls
        if kwarg(outer, "max_tokens") is not None
        for a in [*outer.args, *(k.value for k in outer.keywords)]
    }
    for c in mod.calls_q("SamplingParams"):
        if not mod.resolve(c.func).startswith("vllm") and not mod.imported("vllm"):
            continue
        if id(c) in given_beside:
            continue
        if not has_star_kwargs(c) and kwarg(c, "max_tokens") is None:
            yield Hit(c, "SamplingParams without max_tokens: completions stop at 16 tokens")


SEED_CALLS = (
    "manual_seed",
    "set_seed",
    "seed_everything",
    "manual_seed_all",
    "enable_full_determinism",
)


@rule(
    "LC905",
    "training-without-seed",
    "info",
    ("pytorch",),
    """Flags a training script (a custom loop with ``backward()``) that never seeds its random
    number generators (``torch.manual_seed``, ``transformers.set_seed``, ``seed_everything``,
    ``random.seed``/``np.random.seed``). Initialization, shuffling and dropout then differ on every
    run, so a result cannot be reproduced or compared across changes. (HF ``Trainer`` seeds itself
    and is not flagged.)""",
    "call a seeding helper at start-up: torch.manual_seed(seed); random.seed(seed); np.random.seed(seed)",
)
def no_seed(mod: ModuleFacts):
    bws = [b for sc in mod.bw_scopes for b in backward_events(sc) if b.loops]
    if not bws or mod.calls_q("Trainer", "SFTTrainer", "Seq2SeqTrainer"):
        return
    if mod.any_call(*SEED_CALLS) or any(dotted(c.func).endswith(".seed") for c in mod.all_calls):
        return
    yield Hit(bws[0].node, "training runs without any seed being set")


@rule(
    "LC906",
    "cudnn-benchmark-with-deterministic",
    "warning",
    ("pytorch",),
    """Flags ``torch.backends.cudnn.benchmark = True`` together with
    ``torch.backends.cudnn.deterministic = True`` or ``use_deterministic_algorithms(True)``.
    Benchmark mode picks the fastest kernel per run, which can differ between runs, defeating
    the determinism you asked for.""",
    "set cudnn.benchmark = False when you need deterministic results",
)
def cudnn(mod: ModuleFacts):
    bench = det = None
    for k, vals in mod.assigns.items():
        for v, st in vals:
            if k.endswith("cudnn.benchmark") and mod.value_of(v, None) is True:
                bench = st
            if k.endswith("cudnn.deterministic") and mod.value_of(v, None) is True:
                det = st
    if det is None:
        for c in mod.calls_q("use_deterministic_algorithms"):
            if c.args and mod.value_of(c.args[0], None) is True:
                det = c
    if bench is not None and det is not None:
        yield Hit(bench, "cudnn.benchmark=True undoes the requested determinism")


@rule(
    "LC907",
    "tensor-parallel-not-dividing-gpus",
    "info",
    SERVE,
    """Flags vLLM/SGLang ``tensor_parallel_size``/``tp_size`` that is not a power of two (1, 2, 4,
    8). Attention heads must divide evenly across ranks; odd sizes fail at load for most
    models.""",
    "use a tensor-parallel size that divides the number of attention heads (1, 2, 4 or 8)",
)
def tp_size(mod: ModuleFacts):
    if "tensor_parallel_size" not in mod.source and "tp_size" not in mod.source:
        return
    for c in mod.calls_with_kw("tensor_parallel_size", "tp_size"):
        for k in ("tensor_parallel_size", "tp_size"):
            v = mod.value_of(kwarg(c, k), None)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0 and v & (v - 1):
                yield Hit(c, f"{k}={v} is not a power of two")


def _unused(node: ast.AST) -> None:  # keep ast import used for type checkers
    return None
