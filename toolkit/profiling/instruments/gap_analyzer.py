"""Gap analyzer: where a training step's time goes, and the likely bottlenecks, ranked.

Decomposes step time into data wait, forward, backward, optimizer and other; relates MFU with
DCGM activity (TCA = tensor pipe active, SM active, graphics engine active, DRAM active) and NVML
clocks; ranks the findings by a score in 0..1 (roughly: the share of the step or of the GPU the
finding accounts for), each with the numbers that support it and what to check next. A signal that
was not measured is listed as such and no rule that needs it fires.

    python -m toolkit.profiling.gap_analyzer analyze REPORT.json   # l0_runner --format json output
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit import cli
from toolkit.errors import InputError

PROG = "python -m toolkit.profiling.gap_analyzer"

# Thresholds (fractions 0..1). Each rule's doc line says what crossing it means.
DATA_SHARE = 0.10  # batch fetch above 10% of the step: the accelerator waits for input
OPTIMIZER_SHARE = 0.15  # optimizer above 15% of the step
OTHER_SHARE = 0.10  # step time outside data/forward/backward/optimizer
BACKWARD_OVER_FORWARD = (
    3.0  # backward is ~2x forward for matmul models; 3x+ suggests recompute or slow kernels
)
GR_ACTIVE_LOW = 0.80  # graphics engine idle for more than 20% of the time: host-bound
SM_ACTIVE_LOW = 0.50  # SMs half idle while the GPU is "busy": kernels too small
TCA_LOW = 0.20  # tensor pipes nearly idle
TCA_HIGH = 0.50
MFU_LOW = 0.30
DRAM_HIGH = 0.60
CLOCK_RATIO_LOW = 0.90  # SM clock below 90% of its max: throttling


@dataclass
class GpuActivity:
    """Means over the measured window, averaged over GPUs; ratios in 0..1. ``None``: not measured."""

    tca: float | None = None  # DCGM 1004 PIPE_TENSOR_ACTIVE
    sm_active: float | None = None  # DCGM 1002 SM_ACTIVE
    gr_active: float | None = None  # DCGM 1001 GR_ENGINE_ACTIVE
    dram_active: float | None = None  # DCGM 1005 DRAM_ACTIVE
    util_gpu_pct: float | None = None  # NVML utilization.gpu, 0..100
    sm_clock_ratio: float | None = None  # NVML SM clock / max SM clock
    power_w: float | None = None
    temperature_c: float | None = None
    throttle_reasons: list[str] = field(default_factory=list)  # NVML clock event reasons seen
    not_measured: list[str] = field(default_factory=list)  # e.g. "TCA: DCGM unavailable: ..."


@dataclass
class Finding:
    name: str
    score: float  # 0..1, used for ranking
    evidence: str  # the numbers
    check_next: str


@dataclass
class GapAnalysis:
    step_ms: float
    phases_ms: dict[str, float]  # data, forward, backward, optimizer, other
    phase_share: dict[str, float]
    mfu: float | None
    activity: GpuActivity
    findings: list[Finding]  # ranked, highest score first
    not_measured: list[str]


def analyze(
    step_ms: float,
    phases_ms: dict[str, float],
    mfu: float | None = None,
    activity: GpuActivity | None = None,
) -> GapAnalysis:
    """Rank the likely bottlenecks of a step of ``step_ms`` with the given phase means (ms)."""
    if not step_ms > 0:
        raise InputError(f"step_ms must be > 0, got {step_ms}")
    act = activity or GpuActivity()
    phases = {k: phases_ms.get(k, 0.0) for k in ("data", "forward", "backward", "optimizer")}
    phases["other"] = max(0.0, step_ms - sum(phases.values()))
    share = {k: v / step_ms for k, v in phases.items()}
    found: list[Finding] = []

    def add(name: str, score: float, evidence: str, check: str) -> None:
        found.append(Finding(name, round(min(1.0, max(0.0, score)), 4), evidence, check))

    if share["data"] >= DATA_SHARE:
        add("input pipeline", share["data"],
            f"batch fetch {phases['data']:.3g} ms = {share['data']:.0%} of the {step_ms:.3g} ms step",
            "DataLoader num_workers, pin_memory=True with non_blocking copies, prefetch_factor, "
            "decoding/tokenizing ahead of time")  # fmt: skip
    if share["optimizer"] >= OPTIMIZER_SHARE:
        add("optimizer step", share["optimizer"],
            f"optimizer {phases['optimizer']:.3g} ms = {share['optimizer']:.0%} of the step",
            "foreach=True or fused=True optimizers, fewer parameter tensors, gradient clipping cost")  # fmt: skip
    if share["other"] >= OTHER_SHARE:
        add("time outside the step's phases", share["other"],
            f"{phases['other']:.3g} ms = {share['other']:.0%} of the step not in data/forward/backward/optimizer",
            "logging, .item()/.cpu() synchronizations, checkpointing inside the loop")  # fmt: skip
    if phases["forward"] > 0 and phases["backward"] / phases["forward"] >= BACKWARD_OVER_FORWARD:
        ratio = phases["backward"] / phases["forward"]
        add("slow backward", min(1.0, (ratio - 2) / ratio) * (share["backward"]),
            f"backward {phases['backward']:.3g} ms = {ratio:.1f}x forward {phases['forward']:.3g} ms (about 2x expected)",
            "activation checkpointing recomputes the forward (expected then); otherwise look for "
            "non-fused backward kernels, scatter/index ops, or gradient hooks")  # fmt: skip

    tca, sm, gr, dram = act.tca, act.sm_active, act.gr_active, act.dram_active
    if gr is not None and gr < GR_ACTIVE_LOW:
        add("GPU idle: host-bound", 1 - gr,
            f"graphics engine active {gr:.0%} of the time (DCGM 1001 GRACT)",
            "CPU-side stalls: data loading, Python overhead per kernel launch (try CUDA graphs or "
            "torch.compile), host-device synchronizations")  # fmt: skip
    if sm is not None and sm < SM_ACTIVE_LOW and (gr is None or gr >= GR_ACTIVE_LOW):
        add("kernels do not fill the GPU", (gr if gr is not None else 1.0) - sm,
            f"SM active {sm:.0%}" + (f" while the GPU is busy {gr:.0%}" if gr is not None else ""),
            "larger micro-batch or sequence length, fused kernels, fewer small ops")  # fmt: skip
    if tca is not None and sm is not None and tca < TCA_LOW and sm >= SM_ACTIVE_LOW:
        add("work not on tensor cores", sm - tca,
            f"SM active {sm:.0%} but tensor pipes active {tca:.0%} (DCGM 1004 TENSO)",
            "matmuls in fp32 without TF32 (torch.backends.cuda.matmul.fp32_precision = 'tf32'), "
            "no autocast to bf16, or time dominated by elementwise/normalization kernels")  # fmt: skip
    if tca is not None and mfu is not None and tca >= TCA_HIGH and mfu < MFU_LOW:
        add("tensor cores busy with little model work", tca - mfu,
            f"tensor pipes active {tca:.0%} but MFU {mfu:.0%}",
            "activation recomputation (HFU > MFU), padded or wasted tokens, MFU measured against "
            "the wrong dtype's peak, or many small/odd-shaped matmuls with low efficiency")  # fmt: skip
    if dram is not None and dram >= DRAM_HIGH and (tca is None or tca < TCA_HIGH):
        add("memory-bandwidth bound", dram,
            f"DRAM active {dram:.0%}" + (f", tensor pipes {tca:.0%}" if tca is not None else ""),
            "fuse elementwise ops (torch.compile), larger batch for higher arithmetic intensity, "
            "check for fp32 activations")  # fmt: skip
    if act.sm_clock_ratio is not None and act.sm_clock_ratio < CLOCK_RATIO_LOW:
        extra = f"; reasons: {', '.join(act.throttle_reasons)}" if act.throttle_reasons else ""
        details = "".join(
            f", {label} {v:.0f}{unit}"
            for label, v, unit in (
                ("power", act.power_w, " W"),
                ("temperature", act.temperature_c, " C"),
            )
            if v is not None
        )
        add("clock throttling", 1 - act.sm_clock_ratio,
            f"SM clock at {act.sm_clock_ratio:.0%} of max{details}{extra}",
            "power cap (nvidia-smi -q -d POWER), cooling, or other jobs on the GPU")  # fmt: skip

    not_measured = list(act.not_measured)
    for label, value in (("TCA", tca), ("SM active", sm), ("GPU active", gr), ("DRAM active", dram),
                         ("SM clock", act.sm_clock_ratio), ("MFU", mfu)):  # fmt: skip
        if value is None and not any(n.startswith(label + ":") for n in not_measured):
            not_measured.append(f"{label}: no data given")
    found.sort(key=lambda f: -f.score)
    return GapAnalysis(step_ms, phases, share, mfu, act, found, not_measured)


def render(g: GapAnalysis) -> str:
    rows = [(k, f"{v:.3g}", f"{g.phase_share[k]:.0%}") for k, v in g.phases_ms.items()]
    out = [f"step {g.step_ms:.3g} ms", cli.render_table(("phase", "ms", "share"), rows), ""]
    if g.findings:
        out.append("likely bottlenecks, ranked:")
        for i, f in enumerate(g.findings, 1):
            out += [
                f"  {i}. {f.name} (score {f.score:.2f}): {f.evidence}",
                f"     check: {f.check_next}",
            ]
    else:
        out.append("no bottleneck crossed its threshold")
    out += [f"not measured: {n}" for n in g.not_measured]
    return "\n".join(out)


def from_runtime_report(report: dict[str, Any], source: str = "report") -> GapAnalysis:
    """Analyze an ``l0_runner --format json`` report (GPU sections are used when present)."""
    try:
        times = report["training"]["times"]
        step_ms, phases = float(times["mean_ms"]), dict(times.get("phases_mean_ms") or {})
    except (KeyError, TypeError):
        raise InputError(
            f"{source}: expected l0_runner JSON with training.times.mean_ms (a run with at least one "
            "step after warm-up)"
        ) from None
    mfu = (report.get("performance") or {}).get("mfu")
    activity = GpuActivity(**(report.get("gpu_activity") or {}))
    return analyze(step_ms, phases, mfu, activity)


def build_parser() -> cli.Parser:
    p = cli.Parser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 ok, 2 usage or input error",
    )
    sub = p.add_subparsers(dest="verb", required=True)
    a = sub.add_parser("analyze", help="rank the bottlenecks in an l0_runner JSON report")
    a.add_argument(
        "report",
        type=cli.existing_file("REPORT"),
        metavar="REPORT.json",
        help="output of: python -m toolkit.profiling.l0_runner --format json",
    )
    cli.add_format_flag(a)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = json.loads(cli.read_text(args.report, "REPORT"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{args.report}: not valid JSON at line {exc.lineno}: {exc.msg}") from None
    g = from_runtime_report(report, str(args.report))
    if args.format == "json":
        cli.print_json(g)
    else:
        print(render(g))
    return cli.EXIT_OK
