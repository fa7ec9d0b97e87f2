"""Runtime validation (L1 of the Validation Pyramid): train briefly, measure, check the pipeline.

    python -m toolkit.profiling.l0_runner                       # the built-in example
    python -m toolkit.profiling.l0_runner --entry pkg.train:build_spec
    python -m toolkit.profiling.l0_runner --script train.py -- --lr 3e-4

Verdict PASS (exit 0) or FAIL (exit 1) with one line per reason; exit 2 on a usage/input error.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from toolkit import cli
from toolkit.errors import InputError
from toolkit.profiling import gradients, loss_trend, performance
from toolkit.profiling.checks import Check, verdict
from toolkit.profiling.dcgm_sampler import DcgmSampler
from toolkit.profiling.dcgm_summary import DcgmResult
from toolkit.profiling.gap_analyzer import GapAnalysis, GpuActivity, analyze
from toolkit.profiling.gpu_activity import activity
from toolkit.profiling.l0_args import PROG, build_parser
from toolkit.profiling.layer_profiler import LayerProfile, TrainingStep, profile_layers
from toolkit.profiling.memory_profiler import GIB, MemoryProfiler, MemoryResult
from toolkit.profiling.nvml_sampler import NvmlSampler
from toolkit.profiling.pipeline import PipelineResult, check_pipeline
from toolkit.profiling.runtime import TrainResult, model_device, train
from toolkit.profiling.spec import DEMO_ENTRY, batch_source, load_entry, parse_device
from toolkit.profiling.thresholds import Thresholds, load_thresholds


@dataclass
class Timing:
    """Wall seconds of the runner (from argument parsing to report), the timed steps, and the rest."""

    wall_s: float
    train_s: float
    overhead_s: float  # wall_s - train_s: everything below plus reporting
    setup_s: float = 0.0  # importing and calling the entry (model, optimizer, data construction)
    flops_count_s: float = 0.0  # the extra forward+backward under FlopCounterMode
    grad_stats_s: float = 0.0  # reading gradient norms between backward and optimizer step
    pipeline_s: float = 0.0  # checkpoint save/reload, output comparison, inference, eval
    layers_s: float = 0.0  # the layer profile's extra steps, with and without hooks


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
    timing: Timing | None = None
    notes: list[str] = field(default_factory=list)


def _error_check(train_res: TrainResult) -> list[Check]:
    if train_res.error is None:
        return []
    e = train_res.error
    return [Check("training step", "fail", f"step {e['step']} raised {e['type']}: {e['message']}")]


def run_entry(args, thresholds: Thresholds, t_start: float) -> RuntimeReport:
    device = parse_device(args.device)
    if args.keep_checkpoint is not None and args.keep_checkpoint.exists():
        raise InputError(
            f"--keep-checkpoint {args.keep_checkpoint}: already exists; it will not be overwritten"
        )
    entry = args.entry or DEMO_ENTRY
    t_setup = time.perf_counter()
    cli.report_progress(f"setup: calling {entry}")
    spec = load_entry(entry, device)
    setup_s = time.perf_counter() - t_setup
    next_batch = batch_source(spec)
    dev = model_device(spec)
    dtype = args.dtype or spec.dtype or performance.infer_dtype(spec.model, dev)
    peak = performance.resolve_peak(dev, dtype, args.gpu, args.peak_tflops)
    steps = args.steps or 150
    sampling = args.gpu_sampling == "on" or (args.gpu_sampling == "auto" and dev.type == "cuda")
    estimate = int(args.memory_estimate_gib * GIB) if args.memory_estimate_gib else None
    memory = MemoryProfiler(dev, spec.model, estimate).start()
    nvml_sampler = NvmlSampler(interval_s=0.1).start() if sampling else None
    dcgm_sampler = DcgmSampler(interval_ms=100).start() if sampling else None
    t_sampling = time.perf_counter()
    try:
        tr = train(
            spec, next_batch, steps, args.max_seconds, min(args.warmup_steps, max(steps - 1, 0))
        )
    finally:
        mem = memory.stop()
        nvml_res, dcgm_res = _stop_samplers(
            nvml_sampler, dcgm_sampler, t_sampling, locals().get("tr")
        )
    perf = performance.measure(tr, peak)
    checks = _error_check(tr)
    checks.append(loss_trend.judge(tr.losses, thresholds.min_loss_drop))
    checks += gradients.judge(tr.grad, thresholds.max_grad_norm)
    checks += performance.judge(perf, tr, thresholds)
    gpu = activity(dev, dcgm_res, nvml_res) if sampling else None
    layers = None
    t_layers = time.perf_counter()
    if args.layer_steps > 0 and tr.error is None and tr.grad.first_nonfinite_step is None:
        cli.report_progress(f"layer profile: {args.layer_steps} extra steps")
        try:
            layers = profile_layers(
                spec.model, TrainingStep(spec, next_batch), args.layer_steps, warmup_steps=1
            )
        except Exception as exc:  # a profiling failure must not hide the validation result
            checks.append(Check("layer profile", "skip", f"failed: {type(exc).__name__}: {exc}"))
    layers_s = time.perf_counter() - t_layers
    gaps = analyze(tr.times.mean_ms, tr.times.phases_mean_ms, perf.mfu, gpu) if tr.times else None
    pipe = None
    t_pipe = time.perf_counter()
    if tr.error is None and tr.grad.first_nonfinite_step is None:
        cli.report_progress("pipeline check: save, reload, compare, infer, eval")
        if args.keep_checkpoint is not None:
            pipe = check_pipeline(spec, next_batch, args.keep_checkpoint)
        else:
            with tempfile.TemporaryDirectory(prefix="labcoat-l0-") as tmp:
                pipe = check_pipeline(spec, next_batch, Path(tmp) / "checkpoint.pt")
            pipe.checkpoint_path = None
        checks += pipe.checks
    else:
        checks.append(Check("pipeline", "skip", "not run: training failed"))
    pipeline_s = time.perf_counter() - t_pipe
    wall = time.perf_counter() - t_start
    return RuntimeReport(
        verdict=verdict(checks),
        checks=checks,
        mode="entry",
        target=spec.name if args.entry is None else f"{entry} ({spec.name})",
        device=str(dev),
        torch_version=torch.__version__,
        training=tr,
        performance=perf,
        pipeline=pipe,
        memory=mem,
        gpu_activity=gpu,
        nvml=nvml_res.to_dict() if nvml_res is not None else None,
        dcgm=dcgm_res,
        layers=layers,
        gaps=gaps,
        timing=Timing(
            wall_s=wall,
            train_s=tr.train_s,
            overhead_s=wall - tr.train_s,
            setup_s=setup_s,
            flops_count_s=tr.flops_count_s,
            grad_stats_s=tr.grad_stats_s,
            pipeline_s=pipeline_s,
            layers_s=layers_s,
        ),
        notes=[]
        if sampling
        else ["GPU sampling (NVML, DCGM): off (training on CPU; --gpu-sampling on forces it)"],
    )


def _stop_samplers(nvml_sampler, dcgm_sampler, t_start: float, tr: TrainResult | None):
    """Stop both samplers; trim each to the steps after warm-up (by time) when known."""
    warm = 0.0
    if tr is not None and tr.warmup_end_perf_s is not None:
        warm = max(0.0, tr.warmup_end_perf_s - t_start)
    nvml_res = dcgm_res = None
    if nvml_sampler is not None:
        nvml_res = nvml_sampler.stop()
        if nvml_res.available and warm and (nvml_res.duration_s or 0) > warm:
            nvml_res = nvml_res.summarized(warm)
    if dcgm_sampler is not None:
        dcgm_res = dcgm_sampler.stop(warmup_s=warm)
    return nvml_res, dcgm_res


# ----------------------------------------------------------------------------- output


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
            rows.append((f"{perf.unit}/s", f(perf.tokens_per_sec)))
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
                    f"max {f(g.global_norm_max)}",
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
        out.append(
            f"runner wall {t.wall_s:.1f} s: {t.train_s:.1f} s in timed steps, {t.overhead_s:.1f} s outside "
            f"them (setup {t.setup_s:.2f}, FLOPs count {t.flops_count_s:.2f}, gradient stats "
            f"{t.grad_stats_s:.2f}, layer profile {t.layers_s:.2f}, pipeline check {t.pipeline_s:.2f})"
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


def _l0(args):
    from toolkit.profiling.l0_static import entry_source, run_l0

    path = Path(args.script) if args.script else entry_source(args.entry or DEMO_ENTRY)
    return run_l0(path)


def main(argv: Sequence[str] | None = None) -> int:
    t_start = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, script_args = argv[:i], argv[i + 1 :]
    args = build_parser().parse_args(argv)
    script_args = script_args or list(args.script_args)
    if script_args and args.script is None:
        raise InputError("arguments after '--' are passed to --script; give --script PATH")
    if args.warmup_steps < 0:
        raise InputError(f"--warmup-steps expects an integer >= 0, got {args.warmup_steps}")
    thresholds = load_thresholds(args.baseline) if args.baseline else Thresholds()
    if not args.skip_l0:
        cli.report_progress("L0 static check")
    l0 = None if args.skip_l0 else _l0(args)
    if l0 is not None and l0[1].status == "fail" and not args.l0_continue:
        report = RuntimeReport(
            verdict="FAIL",
            checks=[
                l0[1],
                Check("training", "skip", "not run: L0 found errors (--l0-continue trains anyway)"),
            ],
            mode="script" if args.script else "entry",
            target=args.script or args.entry or DEMO_ENTRY,
            device="not started",
            torch_version=torch.__version__,
            static=l0[0].as_dict() if l0[0] else None,
        )
    elif args.script is not None:
        from toolkit.profiling.script_mode import run_script

        report = run_script(args, script_args, thresholds, t_start)
    else:
        report = run_entry(args, thresholds, t_start)
    if l0 is not None and report.static is None:
        report.checks.insert(0, l0[1])
        report.static = l0[0].as_dict() if l0[0] else None
        report.verdict = verdict(report.checks)
    if args.format == "json":
        cli.print_json(report)
    else:
        print(render(report))
    return cli.EXIT_OK if report.verdict == "PASS" else cli.EXIT_FAILED


if __name__ == "__main__":
    cli.run(main, PROG)
