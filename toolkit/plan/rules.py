"""The plan-lint rules: a stable code, a name, a default severity and a one-line doc each.

Codes never change meaning; a retired rule keeps its code unused. Severity ``error`` marks a
grounding gate the planning skill demands; ``warning`` marks something to look at (a rule may
report either, e.g. PL010 is an error outside 0.5..4 and a warning outside 1..2).
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.errors import InputError


@dataclass(frozen=True)
class Rule:
    """One lint rule. ``doc`` is the one line ``python -m toolkit.plan rules`` prints."""

    code: str
    name: str
    severity: str
    doc: str


@dataclass(frozen=True)
class Finding:
    """One problem: rule ``code``, ``severity`` (error|warning), 1-based ``line``, ``message``."""

    code: str
    severity: str
    line: int
    message: str


RULES: tuple[Rule, ...] = (
    Rule("PL001", "no-steps", "error",
         "the plan has recognisable steps ('### Step N', '## N.' headings, or a top-level "
         "numbered list under a Steps/Plan heading)"),
    Rule("PL002", "step-without-citation", "error",
         "every step cites a source URL"),
    Rule("PL003", "homepage-citation", "error",
         "a step's citation names a specific page (a path beyond the domain root, a query or "
         "an #anchor), not a homepage"),
    Rule("PL004", "citation-without-quote", "error",
         "a step quotes its source: 5+ words in \"quotes\" or a > blockquote within 3 lines of "
         "a specific citation"),
    Rule("PL005", "unpinned-dependency", "error",
         "every dependency is pinned with == (pip install lines, requirements blocks, "
         "Dependencies sections)"),
    Rule("PL006", "no-vram-breakdown", "error",
         "a GPU plan has a VRAM/GPU memory section listing components and a total"),
    Rule("PL007", "vram-arithmetic", "error",
         "the VRAM components add up to the stated total (within 5%)"),
    Rule("PL008", "mfu-mismatch", "error",
         "a stated MFU equals 6 x params x tokens/s / (GPUs x peak FLOP/s) recomputed from the "
         "plan's numbers (within 10%)"),
    Rule("PL009", "mfu-unverifiable", "warning",
         "a stated MFU comes with the numbers to recompute it: params, tokens/s, GPU count, "
         "and a peak TFLOP/s or an exact GPU model"),
    Rule("PL010", "lora-alpha-ratio", "error",
         "LoRA alpha/r is within 0.5..4 (error outside), ideally 1..2 (warning outside)"),
    Rule("PL011", "no-numeric-success-criteria", "error",
         "a 'Success criteria' / 'Validation' section states at least one number with a "
         "comparison (>=, <, at least, within ...)"),
    Rule("PL012", "no-dry-run", "error",
         "a step runs a dry run / smoke test / small subset before the full run"),
    Rule("PL013", "vague-phrase", "error",
         "no vague phrases ('adjust as needed', 'tune this', 'as appropriate', 'if necessary', "
         "'TBD', 'etc.' ...) outside quotes and code"),
    Rule("PL014", "stub-code", "error",
         "fenced code has no stubs: 'pass' or '...' as a body, TODO/FIXME, NotImplementedError"),
    Rule("PL015", "multi-gpu-launch", "error",
         "a multi-GPU or multi-node plan shows both a Slurm (sbatch/srun) and a torchrun "
         "launch line in code"),
    Rule("PL016", "no-export-step", "error",
         "a plan that trains adapters (LoRA/QLoRA/PEFT) or quantizes has a step that merges or "
         "exports the model"),
    Rule("PL017", "no-exported-smoke-test", "error",
         "a plan that exports runs inference on the exported artefact in that step or a later one"),
    Rule("PL018", "no-serving-gate", "error",
         "a plan that serves (vLLM, TGI, Triton, an endpoint) states a measured number to meet "
         "before serving"),
    Rule("PL019", "no-failure-handling", "error",
         "every step says what to check and do when it fails"),
    Rule("PL020", "no-risks", "error",
         "a Risks / Limitations section with content"),
    Rule("PL021", "no-sweep-parameters", "error",
         "a Parameters-to-sweep section lists each parameter with 2+ values, or says why there "
         "is no sweep"),
    Rule("PL022", "no-compute-estimate", "error",
         "an estimated compute/effort section names the toolkit.compute command that gave its "
         "numbers; stated GPU-hours match a re-run of `compute time` (10%)"),
    Rule("PL023", "no-env-detection", "error",
         "the Python environment is detected and activated before the first command runs"),
)  # fmt: skip

BY_CODE = {rule.code: rule for rule in RULES}


def finding(code: str, line: int, message: str, severity: str | None = None) -> Finding:
    """A :class:`Finding` for rule ``code`` with its default severity unless given."""
    return Finding(code, severity or BY_CODE[code].severity, line, message)


def parse_codes(values: list[str] | None, flag: str) -> set[str] | None:
    """Codes selected by comma-separated codes or prefixes (``PL01`` = PL010..PL019).

    ``None`` when ``values`` is empty; :class:`InputError` naming ``flag`` for an entry that
    matches no rule.
    """
    if not values:
        return None
    chosen: set[str] = set()
    for value in values:
        for part in value.split(","):
            part = part.strip().upper()
            if not part:
                continue
            matched = {code for code in BY_CODE if code.startswith(part)}
            if not matched:
                raise InputError(
                    f"{flag}: {part!r} matches no rule; codes are {', '.join(BY_CODE)} "
                    "(see `python -m toolkit.plan rules`)"
                )
            chosen |= matched
    return chosen
