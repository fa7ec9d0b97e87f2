"""``--entry`` mode: train a TrainSpec for a bounded run, with the instruments, then the pipeline check."""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import torch

from toolkit import cli
from toolkit.errors import InputError
from toolkit.profiling.instruments.dcgm_sampler import DcgmSampler
from toolkit.profiling.instruments.gap_analyzer import analyze
from toolkit.profiling.instruments.gpu_activity import activity
from toolkit.profiling.instruments.layer_profiler import TrainingStep, profile_layers
from toolkit.profiling.instruments.memory_profiler import GIB, MemoryProfiler
from toolkit.profiling.instruments.nvml_sampler import NvmlSampler
from toolkit.profiling.spec import DEMO_ENTRY, batch_source, load_entry, parse_device
from toolkit.profiling.validator import gradients, loss_trend, performance, sanity
from toolkit.profiling.validator.checks import Check, verdict
from toolkit.profiling.validator.device import describe_device
from toolkit.profiling.validator.pipeline import check_pipeline
from toolkit.profiling.validator.report import RuntimeReport, Timing
from toolkit.profiling.validator.resume import check_resume, parse_km
from toolkit.profiling.validator.runtime import TrainResult, model_device, train
from toolkit.profiling.validator.thresholds import Thresholds


def _error_check(train_res: TrainResult) -> list[Check]:
    if train_res.error is None:
        return []
    e = train_res.error
    return [Check("training step", "fail", f"step {e['step']} raised {e['type']}: {e['message']}")]


def _untrained_copy(spec):
    """The model before training, for the overfit check: a fresh make_model(), else a deep copy."""
    try:
        return spec.make_model() if spec.make_model is not None else copy.deepcopy(spec.model)
    except Exception:  # an uncopyable model: the check then starts from the trained one
        return None


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
    untrained = _untrained_copy(spec) if args.overfit_steps else None
    memory = MemoryProfiler(dev, spec.model, estimate).start()
    nvml_sampler = NvmlSampler(interval_s=0.1).start() if sampling else None
    dcgm_sampler = DcgmSampler(interval_ms=100).start() if sampling else None
    t_sampling = time.perf_counter()
    try:
        tr = train(
            spec,
            next_batch,
            steps,
            t_start + args.max_seconds,
            min(args.warmup_steps, max(steps - 1, 0)),
        )
    finally:
        mem = memory.stop()
        nvml_res, dcgm_res = _stop_samplers(
            nvml_sampler, dcgm_sampler, t_sampling, locals().get("tr")
        )
    perf = performance.measure(tr, peak)
    checks = _error_check(tr)
    checks.append(loss_trend.judge(tr.losses, thresholds.min_loss_drop))
    checks += gradients.judge(tr.grad, thresholds.max_grad_norm, thresholds.max_clip_fraction)
    checks += sanity.judge_observed(tr.losses, tr.loss_info)
    if args.overfit_steps:
        if tr.error is None:
            checks.append(sanity.overfit_one_batch(spec, next_batch, args.overfit_steps, untrained))
    else:
        checks.append(Check("overfit one batch", "skip", "not run (--overfit-steps N runs it)"))
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
    layers_s = time.perf_counter() - t_layers if args.layer_steps > 0 else None
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
    resumed = None
    if args.resume_check is not None:
        k, m = parse_km(args.resume_check)
        check, resumed = check_resume(entry, device, k, m)
        checks.append(check)
    wall = time.perf_counter() - t_start
    return RuntimeReport(
        verdict=verdict(checks),
        checks=checks,
        mode="entry",
        target=spec.name if args.entry is None else f"{entry} ({spec.name})",
        device=describe_device(dev),
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
        resume=resumed,
        timing=Timing(
            wall_s=wall,
            train_s=tr.train_s,
            overhead_s=wall - tr.train_s,
            setup_s=setup_s,
            flops_count_s=tr.flops_count_s,
            grad_stats_s=tr.grad_stats_s,
            pipeline_s=pipeline_s,
            layers_s=layers_s,
            resume_s=resumed.seconds if resumed else None,
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
