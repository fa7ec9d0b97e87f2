"""Completeness gates: what a plan must say beyond how to train (PL016..PL023).

- PL016: a plan that trains adapters (LoRA/QLoRA/PEFT) or quantizes has a step that merges
  or exports the model.
- PL017: a plan that exports has a step that runs inference on the exported artefact.
- PL018: a plan that serves (vLLM, TGI, Triton, an endpoint) gates serving on a number.
- PL019: every step says what happens when it fails.
- PL020: a Risks / Limitations section with content.
- PL021: a section naming the parameters to sweep, each with two or more values (or saying
  why there is no sweep).
- PL022: an estimated compute section whose numbers come from ``toolkit.compute``: the
  estimator command is named and, for ``compute time``, the stated GPU-hours match a re-run
  of it (within 10%).
- PL023: the first command a plan runs is preceded by detecting and activating its Python
  environment (venv, conda, uv, poetry, module load ...).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex

from toolkit.errors import InputError
from toolkit.plan.document import Document, Step
from toolkit.plan.rules import Finding, finding
from toolkit.plan.text_rules import _COMPARISON_RE
from toolkit.plan.vram import GPU_PLAN_RE

ESTIMATE_TOLERANCE = 0.10

ADAPTER_RE = re.compile(r"\b(?:q?lora|peft|adapters?)\b|\b(?:4|8)-?bit\b|bitsandbytes|\bgptq\b|\bawq\b|quantiz", re.I)  # fmt: skip
EXPORT_RE = re.compile(
    r"merge_and_unload|\bmerg(?:e|es|ing)\s+(?:the\s+)?(?:lora\s+|peft\s+)?(?:adapters?|weights|lora)\b|"
    r"\bexport(?:s|ed|ing)?\b|save_pretrained|\bgguf\b|convert_hf_to_gguf",
    re.I,
)
INFERENCE_RE = re.compile(r"\bgenerat(?:e|es|ion)\b|\binference\b|smoke[- ]?test|\bprompts?\b|\bcompletions?\b", re.I)  # fmt: skip
ARTEFACT_RE = re.compile(r"\bmerged\b|\bexported\b|\bartefact\b|\bartifact\b|\bgguf\b|output[_ -]dir", re.I)  # fmt: skip
SERVE_RE = re.compile(r"\bvllm\b|text-generation-inference|\btgi\b|\bserv(?:e|es|ed|ing)\b|(?:inference|serving|http|api) endpoint|triton inference|\bollama\b|llama-server|\bdeploy(?:s|ed|ing|ment)?\b", re.I)  # fmt: skip
SERVE_CMD_RE = re.compile(r"\bvllm serve\b|-m vllm\b|text-generation-launcher|tritonserver|ollama serve|llama-server", re.I)  # fmt: skip
SERVE_METRIC_RE = re.compile(r"latency|p50|p95|p99|tokens?/s|throughput|requests?/s|qps|time to first token|ttft|error rate|accuracy|exact match|loss", re.I)  # fmt: skip
FAILURE_RE = re.compile(
    r"\bif (?:it|this|that|the \w+(?: \w+)?) fails?\b|\bon failure\b|\bif .{0,60}\b(?:fails?|crash(?:es)?|diverges?|nan|oom|out of memory|exceeds?|errors?)\b|"
    r"\bfall ?back\b|\broll ?back\b|\bretry\b|\bstop (?:and|if|when|the)\b|\babort\b|\bwhen it fails\b|\bfailure handling\b",
    re.I,
)
RISK_RE = re.compile(r"\brisks?\b|\blimitations?\b", re.I)
SWEEP_RE = re.compile(r"\bsweep\b|parameters to (?:sweep|tune|search)|hyper-?parameter (?:search|sweep)|\bablations?\b", re.I)  # fmt: skip
NO_SWEEP_RE = re.compile(r"\bno sweep\b.{0,80}\bbecause\b|\bnot swept\b.{0,80}\bbecause\b", re.I)
NUMBER_RE = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])", re.I)
ESTIMATE_RE = re.compile(r"estimat|\bcompute\b|\beffort\b|\bcost\b|gpu[- ]hours|\bbudget\b", re.I)
ESTIMATOR_RE = re.compile(r"(?:python3? -m toolkit\.compute|labcoat compute)\s+(memory|time|chinchilla|kv-cache)\b([^`\n]*)")  # fmt: skip
GPU_HOURS_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:gpu[- ]hours?|gpu[- ]h\b)", re.I)
RUN_CMD_RE = re.compile(r"^\s*(?:\$\s+)?(?:python3?|torchrun|accelerate\s+launch|deepspeed|srun|sbatch|pip3?|bash\s+\S+\.sh|\./\S+\.sh)\b")  # fmt: skip
ENV_RE = re.compile(
    r"\bsource\s+\S*activate\b|\b(?:conda|mamba|micromamba)\s+activate\b|\buv\s+(?:run|venv|sync)\b|"
    r"\bpoetry\s+(?:run|install)\b|\bpixi\s+run\b|python3? -m venv\b|\$\{?VIRTUAL_ENV\b|\$\{?CONDA_PREFIX\b|"
    r"\bwhich\s+python3?\b|\bcommand -v python3?\b|\bmodule\s+load\b|\.venv/bin/python\b",
    re.I,
)
SHELL_INFO = {"", "bash", "sh", "shell", "console", "zsh", "sbatch"}


def _step_text(doc: Document, step: Step) -> str:
    return "\n".join(doc.text(n) for n in range(step.start, step.end + 1))


def _prose_text(doc: Document) -> str:
    return "\n".join(text for _, text in doc.prose())


def check_export(doc: Document) -> list[Finding]:
    """PL016 and PL017: adapters/quantization are merged or exported; the export is tried."""
    if not doc.steps or not ADAPTER_RE.search("\n".join(doc.lines)):
        return []
    exports = [s for s in doc.steps if EXPORT_RE.search(_step_text(doc, s))]
    if not exports:
        kind = ADAPTER_RE.search("\n".join(doc.lines)).group(0)
        return [finding("PL016", doc.steps[-1].start,
                        f"the plan uses {kind!r} but no step merges or exports the model (merge_and_unload / save_pretrained / export to GGUF) before it is evaluated or served")]  # fmt: skip
    first = exports[0]
    for step in doc.steps:
        if step.start < first.start:
            continue
        text = _step_text(doc, step)
        if INFERENCE_RE.search(text) and ARTEFACT_RE.search(text):
            return []
    return [finding("PL017", first.start,
                    f"step {first.number} exports the model but no step from there on runs inference on the exported artefact (load the merged/exported model and generate from a few prompts)")]  # fmt: skip


def check_serving_gate(doc: Document) -> list[Finding]:
    """PL018: serving steps (named in prose, or a serving command in code) state a measured
    number that must hold before serving."""

    def serves(step: Step) -> bool:
        prose = "\n".join(t for _, t in doc.prose(step.start, step.end))
        code = "\n".join(
            t for n in range(step.start, step.end + 1) if doc.in_code[n - 1] for t in [doc.text(n)]
        )
        return bool(SERVE_RE.search(prose) or SERVE_CMD_RE.search(code))

    serving = [s for s in doc.steps if serves(s)]
    if not serving:
        return []
    for step in serving:
        for n in range(step.start, step.end + 1):
            text = doc.text(n)
            if SERVE_METRIC_RE.search(text) and _COMPARISON_RE.search(text):
                return []
    return [finding("PL018", serving[0].start,
                    f"step {serving[0].number} serves the model but no serving gate states a number to meet first (e.g. 'p95 latency under 500 ms at 8 concurrent requests', 'exact match at least 0.62 on 200 held-out prompts')")]  # fmt: skip


def check_failure_handling(doc: Document) -> list[Finding]:
    """PL019: each step says what to do when it fails."""
    out = []
    for step in doc.steps:
        if not FAILURE_RE.search(_step_text(doc, step)):
            label = f"step {step.number} ({step.title.strip()[:50]})"
            out.append(finding("PL019", step.start,
                               f"{label} says nothing about failure: add what to check and do when it fails (e.g. 'If it fails: ...', 'stop if ... exceeds ...', 'fall back to ...')"))  # fmt: skip
    return out


def _section_content(doc: Document, start: int, end: int) -> list[tuple[int, str]]:
    return [
        (n, t) for n, t in doc.prose(start + 1, end) if t.strip() and not t.lstrip().startswith("#")
    ]


def check_risks(doc: Document) -> list[Finding]:
    """PL020: a Risks / Limitations section with at least one line."""
    for _, start, end in doc.sections(RISK_RE):
        if _section_content(doc, start, end):
            return []
    return [finding("PL020", 1, "no 'Risks' or 'Limitations' section: name what could go wrong or not hold (data, compute, method) and what the plan does about it")]  # fmt: skip


def check_sweep(doc: Document) -> list[Finding]:
    """PL021: the parameters to sweep, each with 2+ values, or why there is no sweep."""
    found = doc.sections(SWEEP_RE)
    for _, start, end in found:
        for _, text in _section_content(doc, start, end):
            if len(NUMBER_RE.findall(text)) >= 2 or NO_SWEEP_RE.search(text):
                return []
    line = found[0][1] if found else 1
    what = "lists no parameter with two or more values" if found else "is missing"
    return [finding("PL021", line, f"the 'Parameters to sweep' section {what}: name each parameter and its values (e.g. 'learning rate: 1e-4, 2e-4, 5e-4'), or say 'no sweep because ...'")]  # fmt: skip


def _rerun_estimator(verb: str, args: str) -> dict | str:
    """The JSON of ``toolkit.compute VERB ARGS`` run in-process, or why it failed."""
    from toolkit.compute.__main__ import main as compute_main

    try:
        argv = [verb, *shlex.split(args.replace("\\", " ")), "--format", "json"]
    except ValueError as exc:
        return f"cannot split the command ({exc})"
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            compute_main(argv)
    except InputError as exc:
        return str(exc)
    except SystemExit as exc:  # argparse: bad flag
        return f"the command is not valid (exit {exc.code})"
    try:
        return json.loads(out.getvalue())
    except json.JSONDecodeError:
        return "no JSON came back"


def check_estimate(doc: Document) -> list[Finding]:
    """PL022 (GPU plans): compute/effort estimated with the toolkit's estimators, the numbers
    matching."""
    if not GPU_PLAN_RE.search(_prose_text(doc)):
        return []
    sections = [s for s in doc.sections(ESTIMATE_RE) if "vram" not in s[0].text.lower()]
    if not sections:
        return [finding("PL022", 1, "no estimated compute/effort section: run `python -m toolkit.compute time ...` and state its GPU-hours and wall-clock time")]  # fmt: skip
    for heading, start, end in sections:
        text = "\n".join(doc.text(n) for n in range(start, end + 1))
        commands = ESTIMATOR_RE.findall(text)
        if not commands:
            continue
        for verb, args in commands:
            if verb != "time":
                continue
            result = _rerun_estimator(verb, args)
            if isinstance(result, str):
                return [finding("PL022", heading.line, f"the estimator command in '{heading.text}' fails: {result}")]  # fmt: skip
            stated = GPU_HOURS_RE.search(text)
            if stated is None:
                return [finding("PL022", heading.line, f"'{heading.text}' runs `compute time` but states no GPU-hours (it gives {result['gpu_hours']:.4g})")]  # fmt: skip
            value = float(stated.group(1).replace(",", ""))
            want = float(result["gpu_hours"])
            if abs(value - want) > ESTIMATE_TOLERANCE * max(want, 1e-9):
                return [finding("PL022", heading.line, f"'{heading.text}' states {value:g} GPU-hours; `compute time` with its arguments gives {want:.4g} (more than {ESTIMATE_TOLERANCE:.0%} apart)")]  # fmt: skip
        return []
    return [finding("PL022", sections[0][1], f"'{sections[0][0].text}' names no toolkit estimator: the numbers must come from `python -m toolkit.compute time|memory|chinchilla ...`, with the command written next to them")]  # fmt: skip


def check_env_detection(doc: Document) -> list[Finding]:
    """PL023: the environment is detected and activated before the first command runs."""
    for block in doc.code_blocks:
        if block.info.lower() not in SHELL_INFO:
            continue
        for line, text in block.body:
            if ENV_RE.search(text):
                return []
            if RUN_CMD_RE.search(text):
                return [finding("PL023", line, "the first command runs in an unknown Python environment: detect and activate it first (e.g. 'source .venv/bin/activate', 'conda activate ENV', 'uv run ...', or check '$VIRTUAL_ENV')")]  # fmt: skip
    return []
