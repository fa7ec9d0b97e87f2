"""Text gates: vague phrases (PL013), stubbed code (PL014), numeric success criteria (PL011),
and Slurm + torchrun launch lines for multi-GPU plans (PL015)."""

from __future__ import annotations

import re

from toolkit.plan.document import Document, strip_quoted
from toolkit.plan.rules import Finding, finding

VAGUE_PHRASES: tuple[str, ...] = (
    "adjust as needed", "tune as needed", "as needed", "tune this", "tune accordingly",
    "as appropriate", "where appropriate", "when appropriate", "if necessary", "as necessary",
    "if needed", "tbd", "to be determined", "etc.", "and so on", "and so forth",
    "a reasonable value", "an appropriate value", "a suitable value", "some value",
    "play around with", "should be fine", "hopefully", "somehow", "figure out",
)  # fmt: skip
_VAGUE_RE = re.compile(
    "|".join(
        r"(?<![\w-])" + re.escape(p) + (r"(?![\w-])" if p[-1].isalnum() else "")
        for p in VAGUE_PHRASES
    ),
    re.IGNORECASE,
)

_STUB_RES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*pass\s*(?:#.*)?$"), "'pass' as a body"),
    (re.compile(r"^\s*\.\.\.\s*(?:#.*)?$"), "'...' as a body"),
    (re.compile(r":\s*(?:pass|\.\.\.)\s*(?:#.*)?$"), "an empty body (pass / ...)"),
    (re.compile(r"\b(?:TODO|FIXME|XXX)\b"), "a TODO/FIXME marker"),
    (re.compile(r"\bNotImplementedError\b"), "NotImplementedError"),
    (re.compile(r"your code here|implement (?:this|me)\b", re.IGNORECASE), "a placeholder"),
)
_YAML_INFO = {"yaml", "yml"}

SUCCESS_SECTION_RE = re.compile(
    r"success criteria|validation|acceptance criteria|success metrics|exit criteria",
    re.IGNORECASE,
)
_COMPARISON_RE = re.compile(
    r"(?:>=|<=|≥|≤|(?<![-=])>|<(?![-!])|\bat least\b|\bat most\b|\bno more than\b|"
    r"\bno less than\b|\bless than\b|\bgreater than\b|\bmore than\b|\bfewer than\b|\bbelow\b|"
    r"\babove\b|\bunder\b|\bover\b|\bwithin\b|\bexceeds?\b|\bbeats?\b|\bimproves? by\b|"
    r"\bdrops? by\b)\s*[~≈]?\s*[-+]?[$]?\d",
    re.IGNORECASE,
)

_MULTI_GPU_RES = (
    re.compile(r"(?<![\d.])(?:\d+\s*[-–]\s*)?(\d+)\s+GPUs\b", re.IGNORECASE),
    re.compile(r"(?<![\d.])(\d+)\s*[×x]\s*(?:NVIDIA\s+)?[A-Z]{1,3}\d{2,4}[A-Z]?\b"),
    re.compile(r"--nproc[-_]per[-_]node[ =](\d+)"),
    re.compile(r"--nnodes[ =](\d+)"),
    re.compile(r"--nodes[ =](\d+)"),
    re.compile(r"--gres=gpu:(?:\w+:)?(\d+)"),
    re.compile(r"(?<![\d.])(\d+)\s+nodes\b", re.IGNORECASE),
)
_MULTI_NODE_RE = re.compile(r"multi-?node|multiple nodes", re.IGNORECASE)
_SLURM_RE = re.compile(r"\b(?:sbatch|srun)\b")
_TORCHRUN_RE = re.compile(r"\btorchrun\b")


def check_vague(doc: Document) -> list[Finding]:
    """PL013 per vague phrase in prose (not in code, inline code, quotes, blockquotes, URLs)."""
    out = []
    for number, text in doc.prose():
        if text.lstrip().startswith(">"):
            continue
        for match in _VAGUE_RE.finditer(strip_quoted(text)):
            out.append(
                finding(
                    "PL013",
                    number,
                    f"vague phrase '{match.group(0)}': state the value, the condition and "
                    "the action",
                )
            )
    return out


def check_stubs(doc: Document) -> list[Finding]:
    """PL014 per stub line in fenced code blocks."""
    out = []
    for block in doc.code_blocks:
        for number, text in block.body:
            for pattern, what in _STUB_RES:
                if what == "'...' as a body" and block.info in _YAML_INFO:
                    continue
                if pattern.search(text):
                    out.append(
                        finding("PL014", number, f"stubbed code: {what} in `{text.strip()}`")
                    )
                    break
    return out


def check_success_criteria(doc: Document) -> list[Finding]:
    """PL011: a success-criteria/validation section with a number and a comparison."""
    sections = doc.sections(SUCCESS_SECTION_RE)
    if not sections:
        return [
            finding(
                "PL011",
                1,
                "no 'Success criteria' or 'Validation' section: state measurable pass/fail "
                "numbers (e.g. eval loss <= 1.35, MMLU >= 64.0)",
            )
        ]
    for _heading, start, end in sections:
        for _, text in doc.prose(start + 1, end):
            body = re.sub(r"^\s*>\s?", "", text)
            if _COMPARISON_RE.search(body):
                return []
    heading = sections[0][0]
    return [
        finding(
            "PL011",
            heading.line,
            f"'{heading.text}' has no numeric criterion: give a number with a comparison "
            "(>=, <, at least, within ...)",
        )
    ]


def multi_gpu_line(doc: Document) -> int | None:
    """First line that says the plan uses more than one GPU or node, or ``None``."""
    for number, text in enumerate(doc.lines, start=1):
        if _MULTI_NODE_RE.search(text):
            return number
        for pattern in _MULTI_GPU_RES:
            if any(int(m) > 1 for m in pattern.findall(text)):
                return number
    return None


def check_launch_lines(doc: Document) -> list[Finding]:
    """PL015: a multi-GPU plan shows sbatch/srun and torchrun in code (fenced or inline)."""
    line = multi_gpu_line(doc)
    if line is None:
        return []
    code = [text for _, text in doc.code_text()]
    missing = []
    if not any(_SLURM_RE.search(text) for text in code):
        missing.append("a Slurm launch (sbatch script or srun line)")
    if not any(_TORCHRUN_RE.search(text) for text in code):
        missing.append("a torchrun line")
    if not missing:
        return []
    return [
        finding(
            "PL015",
            line,
            f"multi-GPU plan (line {line}) lacks {' and '.join(missing)} in code; "
            "`python -m toolkit.hardware launch` prints both",
        )
    ]
