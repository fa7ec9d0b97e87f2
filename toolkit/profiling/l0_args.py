"""The command line of ``python -m toolkit.profiling.l0_runner``: its parser alone, without torch.

The runner itself imports torch; this module does not, so the MCP server (``toolkit.mcp``) can
derive the runtime-validation tool's input schema from the very parser the CLI uses.
"""

from __future__ import annotations

from pathlib import Path

from toolkit import cli

PROG = "python -m toolkit.profiling.l0_runner"
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")  # compute dtypes of a TrainSpec / --dtype


def build_parser() -> cli.Parser:
    p = cli.Parser(
        prog=PROG,
        description=(
            "L1 runtime validation: train a bounded number of steps, measure step time, tokens/s,\n"
            "FLOPs and MFU, gradient health and the loss trend, then check the pipeline:\n"
            "save checkpoint -> reload into a fresh model -> identical outputs -> inference -> eval.\n"
            "With no --entry/--script it validates the built-in example (a small GPT on shipped text)."
        ),
        epilog="exit codes: 0 PASS, 1 FAIL, 2 usage or input error",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--entry",
        metavar="MODULE:FUNCTION",
        help="function returning a TrainSpec (model, optimizer, batches, loss_fn; optional eval_fn, "
        "infer_fn, make_model); 'path/to/file.py:function' works too. Default: the built-in example",
    )
    target.add_argument(
        "--script",
        metavar="PATH",
        help="an unmodified training script, run in this process and observed through torch's "
        "own entry points (optimizer steps, backward, clip_grad_norm_, the model's forward); "
        "its arguments follow '--'",
    )
    p.add_argument(
        "script_args",
        nargs="*",
        metavar="-- ARGS",
        help="arguments for the --script training script (after '--')",
    )
    p.add_argument(
        "--steps",
        metavar="N",
        type=cli.positive_int("--steps"),
        default=None,
        help="maximum training steps (default: 150 for --entry, 50 for --script); in --script "
        "mode a step is an optimizer.step(), or a backward pass when no torch optimizer steps",
    )
    p.add_argument(
        "--max-seconds",
        metavar="SECONDS",
        type=cli.positive_float("--max-seconds"),
        default=30.0,
        help="stop training this many seconds after the runner started, setup and warm-up "
        "included; --script: the script is stopped even before its first step (default: 30)",
    )
    p.add_argument(
        "--resume-check",
        metavar="K,M",
        help="--entry: train K steps, checkpoint (the spec's save_checkpoint, else model + "
        "optimizer), continue M steps; then resume from the checkpoint in a fresh process and "
        "compare its M losses with the uninterrupted run's (default: not run)",
    )
    p.add_argument(
        "--overfit-steps",
        metavar="N",
        type=cli.positive_int("--overfit-steps"),
        help="--entry: also train a copy of the model on one batch for N steps; the loss must "
        "fall below 10%% of its first value (default: not run)",
    )
    p.add_argument(
        "--warmup-steps",
        metavar="N",
        type=cli.non_negative_int("--warmup-steps"),
        default=5,
        help="steps excluded from step-time statistics (default: 5)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="device passed to --entry: auto (cuda if available), cpu, cuda, cuda:N (default: auto)",
    )
    p.add_argument(
        "--gpu",
        metavar="NAME",
        help="GPU whose dense peak FLOPS MFU is measured against (see: python -m toolkit.hardware specs); "
        "default: the GPU torch reports",
    )
    p.add_argument(
        "--peak-tflops",
        metavar="TFLOP/S",
        type=cli.positive_float("--peak-tflops"),
        help="dense peak TFLOP/s of one device, overriding the spec table (e.g. for a CPU)",
    )
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        help="compute dtype for the peak lookup (default: the spec's dtype, else the parameters')",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="YAML",
        help="thresholds: min_mfu (0..1), max_step_time_ms (ms), min_tokens_per_sec, "
        "max_grad_norm (absolute; default: judged against the run), max_clip_fraction (0..1), "
        "min_loss_drop (relative)",
    )
    p.add_argument(
        "--skip-l0",
        action="store_true",
        help="do not run the L0 static check on the training script first",
    )
    p.add_argument(
        "--l0-continue",
        action="store_true",
        help="train even when the L0 static check reports error-level findings (default: stop)",
    )
    p.add_argument(
        "--gpu-sampling",
        choices=("auto", "on", "off"),
        default="auto",
        help="sample GPUs with NVML (100 ms) and DCGM dmon (TCA, SM, DRAM activity; 100 ms) during "
        "training: auto = when training on CUDA (default: auto)",
    )
    p.add_argument(
        "--layer-steps",
        metavar="N",
        type=cli.non_negative_int("--layer-steps"),
        default=10,
        help="extra steps after the timed run for the per-module forward/backward profile, "
        "plus as many without hooks for its overhead; 0 skips it (default: 10)",
    )
    p.add_argument(
        "--memory-estimate-gib",
        metavar="GIB",
        type=cli.positive_float("--memory-estimate-gib"),
        help="planning estimate of the per-device peak memory, GiB, compared with the measured peak",
    )
    p.add_argument(
        "--keep-checkpoint",
        type=Path,
        metavar="PATH",
        help="write the pipeline-check checkpoint here and keep it (must not exist); "
        "default: a temporary file, removed afterwards",
    )
    cli.add_format_flag(p)
    return p
