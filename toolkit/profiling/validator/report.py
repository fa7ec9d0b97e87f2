"""The L1 report: what was measured and checked, and its text rendering."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolkit import cli
from toolkit.profiling.instruments.dcgm_summary import DcgmResult
from toolkit.profiling.instruments.gap_analyzer import GapAnalysis, GpuActivity
from toolkit.profiling.instruments.layer_profiler import LayerProfile
from toolkit.profiling.instruments.memory_profiler import GIB, MemoryResult
from toolkit.profiling.validator import performance
from toolkit.profiling.validator.checks import Check
from toolkit.profiling.validator.pipeline import PipelineResult
from toolkit.profiling.validator.resume import ResumeResult
from toolkit.profiling.validator.runtime import TrainResult


@dataclass
class Timing:
    """Wall seconds of the runner (from argument parsing to report), the timed steps, and the rest.

    A part is None when this mode did not measure it (it is then not shown), never 0.
    """

    wall_s: float
    train_s: float
    overhead_s: float  # wall_s - train_s: everything below plus reporting
    setup_s: float | None = None  # entry: importing and calling it; script: start -> 1st step end
    flops_count_s: float | None = None  # entry: the extra forward+backward under FlopCounterMode
    grad_stats_s: float | None = None  # reading gradient norms, outside the timed steps
    pipeline_s: float | None = None  # checkpoint save/reload, output comparison, inference, eval
    layers_s: float | None = None  # the layer profile's extra steps, with and without hooks
    resume_s: float | None = None  # --resume-check: both runs, the fresh process included

    def parts(self) -> list[tuple[str, float]]:
        names = (
            ("setup", self.setup_s), ("FLOPs count", self.flops_count_s),
            ("gradient stats", self.grad_stats_s), ("layer profile", self.layers_s),
            ("pipeline check", self.pipeline_s),
            ("resume check", self.resume_s),
        )  # fmt: skip
        return [(n, v) for n, v in names if v is not None]


@dataclass
class RuntimeReport:
    verdict: str
    checks: list[Check]
    mode: str  # "entry" or "script"
    target: str
    device: str
    torch_version: str
    static: dict | None = None  # L0: the static analyzer's JSON for the training script
    training: TrainResult | None = None
    performance: performance.Performance | None = None
    pipeline: PipelineResult | None = None
    memory: MemoryResult | None = None
    gpu_activity: GpuActivity | None = None  # the training GPU's DCGM/NVML means
    nvml: dict | None = None  # NvmlResult.to_dict(); None when sampling is off
    dcgm: DcgmResult | None = None
    layers: LayerProfile | None = None
    gaps: GapAnalysis | None = None
    resume: ResumeResult | None = None  # --resume-check
    timing: Timing | None = None
    notes: list[str] = field(default_factory=list)


def render(r: RuntimeReport) -> str:
    f = cli.fmt_num
    out = [
        f"labcoat runtime validation (L1): {r.target}",
        f"device {r.device}, torch {r.torch_version}",
        "",
    ]
    tr, perf = r.training, r.performance
    if tr is not None:
        rows = [("steps", f"{tr.steps} ({tr.warmup_steps} warm-up; stopped: {tr.stop_reason})")]
        if tr.first_step_ms is not None:
            label = "first step" if r.mode == "entry" else "start -> 1st step"
            rows.append((label, f(tr.first_step_ms, unit="ms")))
        if tr.times:
            t = tr.times
            rows.append(
                (
                    "step time",
                    f"median {f(t.median_ms)} ms, mean {f(t.mean_ms)}, p90 {f(t.p90_ms)} (n={t.count})",
                )
            )
            if t.phases_mean_ms:
                rows.append(
                    (
                        "step phases",
                        ", ".join(f"{k} {f(v)} ms" for k, v in t.phases_mean_ms.items()),
                    )
                )
        if perf is not None:
            rows.append(
                (
                    f"{perf.unit}/s",
                    f(perf.tokens_per_sec) if perf.tokens_per_sec is not None else perf.tokens_note,
                )
            )
        rows.append(("FLOPs / step", f(tr.flops_per_step) if tr.flops_per_step else tr.flops_note))
        if perf is not None:
            rows.append(
                (
                    "MFU",
                    f"{perf.mfu:.2%}  ({perf.mfu_note})" if perf.mfu is not None else perf.mfu_note,
                )
            )
        g = tr.grad
        if g.global_norm_first is not None:
            rows.append(
                (
                    "grad norm",
                    f"first {f(g.global_norm_first)}, last {f(g.global_norm_last)}, "
                    f"median {f(g.global_norm_median)}, max {f(g.global_norm_max)} "
                    f"({tr.grad_source})",
                )
            )
        if g.clip is not None:
            c = g.clip
            rows.append(
                (
                    "clipping",
                    f"{c.clipped}/{c.steps} steps clipped at max_norm {c.max_norm:g} "
                    f"(clip_grad_norm_'s norm median {f(c.median_norm)})",
                )
            )
        if tr.losses:
            rows.append(("loss", f"first {tr.losses[0]:.4g}, last {tr.losses[-1]:.4g}"))
        out += [cli.render_table(("measure", "value"), rows), ""]
        if g.last_step_norms:
            top = sorted(
                g.last_step_norms.items(), key=lambda kv: -kv[1] if kv[1] == kv[1] else float("inf")
            )
            out.append("per-layer gradient norms, last step (largest 5, smallest 3):")
            shown = top[:5] + [("...", "")] + top[-3:] if len(top) > 8 else top
            out += [
                cli.render_table(
                    ("parameter", "grad L2 norm"), [(n, f(v) if v != "" else "") for n, v in shown]
                ),
                "",
            ]
    if r.static and r.static.get("findings"):
        out.append("L0 static findings:")
        out += [
            f"  {f['severity']:<7} {f['code']} {f['path']}:{f['line']}: {f['message']}"
            for f in r.static["findings"][:10]
        ]
        out.append("")
    out += _render_instruments(r)
    if r.pipeline is not None and (r.pipeline.checkpoint_bytes is not None):
        p = r.pipeline
        out.append(
            f"checkpoint: {p.checkpoint_bytes:,} bytes, save {f(p.save_ms)} ms, load {f(p.load_ms)} ms"
            + (f", kept at {p.checkpoint_path}" if p.checkpoint_path else "")
            + ""
        )
        out.append("")
    if r.timing is not None:
        t = r.timing
        parts = ", ".join(f"{n} {v:.2f}" for n, v in t.parts())
        out.append(
            f"runner wall {t.wall_s:.1f} s: {t.train_s:.1f} s in timed steps, {t.overhead_s:.1f} s "
            f"outside them" + (f" (of which {parts})" if parts else "")
        )
    out += [f"note: {n}" for n in r.notes]
    out += ["", f"verdict: {r.verdict}"]
    mark = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
    out += [f"  {mark[c.status]}  {c.name}: {c.message}" for c in r.checks]
    if tr is not None and tr.error is not None:
        out += ["", "traceback of the failed step:", str(tr.error["traceback"]).rstrip()]
    return "\n".join(out)


def _render_instruments(r: RuntimeReport) -> list[str]:
    out: list[str] = []
    m = r.memory
    if m is not None:
        if m.peak_allocated_bytes is not None:
            frag = (
                "not measured"
                if m.fragmentation_at_peak is None
                else f"{m.fragmentation_at_peak:.1%}"
            )
            out.append(
                f"memory ({m.method}): peak allocated {m.peak_allocated_bytes / GIB:.3f} GiB, reserved "
                f"{(m.peak_reserved_bytes or 0) / GIB:.3f} GiB, fragmentation at peak {frag}, "
                f"alloc retries {m.num_alloc_retries}, OOMs {m.num_ooms}"
            )
        elif m.rss_peak_bytes is not None:
            out.append(f"memory ({m.method}): RSS peak {m.rss_peak_bytes / GIB:.3f} GiB")
        if m.measured_over_estimate is not None:
            out.append(f"  measured / planning estimate: {m.measured_over_estimate:.2f}x")
    a = r.gpu_activity
    if a is not None:
        parts = [
            f"{label} {fmt.format(v)}"
            for label, v, fmt in (
                ("TCA", a.tca, "{:.0%}"), ("SM active", a.sm_active, "{:.0%}"),
                ("GPU active", a.gr_active, "{:.0%}"), ("DRAM active", a.dram_active, "{:.0%}"),
                ("NVML util", a.util_gpu_pct, "{:.0f}%"), ("SM clock/max", a.sm_clock_ratio, "{:.0%}"),
                ("power", a.power_w, "{:.0f} W"), ("temp", a.temperature_c, "{:.0f} C"),
            )
            if v is not None
        ]  # fmt: skip
        out.append(
            "GPU activity after warm-up: " + (", ".join(parts) if parts else "nothing measured")
        )
        out += [f"  not measured: {n}" for n in a.not_measured]
    lp = r.layers
    if lp is not None:
        top = sorted(lp.rows, key=lambda row: -row.self_share_of_step)[:5]
        overhead = "not measured" if lp.overhead is None else f"{lp.overhead:+.1%}"
        out.append(
            f"layers ({lp.steps} extra steps, {lp.clock}, profiler overhead {overhead}): model forward "
            f"{lp.model_forward_ms:.3g} ms, backward {lp.model_backward_ms:.3g} ms; top by self time:"
        )
        out += [
            f"  {row.name:<28} fwd {row.self_forward_ms:7.3f} ms  bwd "
            + (
                "not measured"
                if row.self_backward_ms is None
                else f"{row.self_backward_ms:7.3f} ms"
            )
            + f"  {row.self_share_of_step:5.1%} of step"
            for row in top
        ]
    g = r.gaps
    if g is not None:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in g.phase_share.items())
        out.append(f"step breakdown: {shares}")
        if g.findings:
            out += [
                f"  bottleneck {i}: {f.name}: {f.evidence}" for i, f in enumerate(g.findings[:3], 1)
            ]
        else:
            out.append("  no bottleneck crossed its threshold")
    return out + ([""] if out else [])
