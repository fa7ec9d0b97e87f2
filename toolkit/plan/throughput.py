"""PL008/PL009: stated MFU recomputed from the plan's own numbers; PL010: LoRA alpha/r.

An MFU claim is a prose line with ``MFU`` and a percentage (``MFU ≈ 38%``, ``MFU = ... = 0.38``
is read as a fraction when no % is given) and no comparison word (targets such as ``MFU >= 35%``
are success criteria, not claims). Its inputs are looked up on the claim line, then in the
claim's section, then in the whole plan:

- parameters: ``8.03B parameters``, ``params: 8.03e9``, ``N = 8.03B`` (not "trainable ...");
- throughput: ``2,400 tokens/s`` (``tok/s``, ``tokens per second``; ``k`` = 1,000); followed by
  ``per GPU`` it is per GPU, else for all GPUs;
- GPUs: ``8 GPUs``, ``8 x H100``, ``num_gpus: 8``, ``GPUs: 8`` (1 when only per-GPU throughput);
- peak: ``peak ... 989 TFLOP/s`` / ``989 TFLOP/s peak``, else the dense peak of the GPU model the
  plan names (``H100 SXM``, ``A100 SXM 80GB``; see ``python -m toolkit.hardware specs``) for
  bf16, or fp8/fp16 when the section says so.

MFU = 6 x params x tokens/s / (GPUs x peak FLOP/s) (``toolkit.compute.mfu.utilization``); the
claim must be within 10% (relative) of it.
"""

from __future__ import annotations

import re

from toolkit.compute.mfu import utilization
from toolkit.errors import InputError
from toolkit.hardware.specs import get_spec
from toolkit.plan.document import Document, strip_inline_code
from toolkit.plan.rules import Finding, finding

MFU_TOLERANCE = 0.10
LORA_HARD = (0.5, 4.0)
LORA_SOFT = (1.0, 2.0)

_SCALE = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "million": 1e6, "b": 1e9, "B": 1e9}
_SCALE["billion"] = 1e9
_COMPARE_RE = re.compile(
    r"[<>≥≤]|\bat least\b|\bat most\b|\btarget\b|\babove\b|\bbelow\b",
    re.IGNORECASE,
)
_MFU_RE = re.compile(r"\bMFU\b", re.IGNORECASE)
_PCT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FRACTION_RE = re.compile(r"=\s*(0\.\d+)\s*$")
_NUM = r"(\d[\d,]*(?:\.\d+)?(?:[eE][+-]?\d+)?)"
_PARAMS_RES = (
    re.compile(_NUM + r"\s*(B|billion|M|million)?\s+(?:total\s+)?param(?:eter)?s\b", re.IGNORECASE),
    re.compile(
        r"(?<!trainable )\b(?:params|parameters|N)\s*(?:\([^)]*\))?\s*[:=≈]\s*~?\s*" + _NUM
        + r"\s*(B|billion|M|million)?\b",
        re.IGNORECASE,
    ),
)  # fmt: skip
_TPS_RE = re.compile(
    _NUM + r"\s*(k|K)?\s*(?:tokens?|tok)\s*(?:/\s*s(?:ec)?\b|per second\b)(?P<tail>.{0,20})"
)
_PER_GPU_RE = re.compile(r"^\s*(?:per|/|each)\s*(?:GPU|device|rank)", re.IGNORECASE)
_GPUS_RES = (
    re.compile(r"\bnum_gpus\s*[:=]\s*(\d+)", re.IGNORECASE),
    re.compile(r"\bGPUs\s*[:=]\s*(\d+)", re.IGNORECASE),
    re.compile(r"(?<![\d.])(\d+)\s*[×x*]\s*(?:NVIDIA\s+)?(?:[A-Z]{1,3}\d{1,4}[A-Z]?)\b"),
    re.compile(r"(?<![\d.])(\d+)\s+GPUs\b", re.IGNORECASE),
)
_PEAK_RES = (
    re.compile(r"peak[^.\n]{0,40}?" + _NUM + r"\s*TFLOPS?(?:/s)?", re.IGNORECASE),
    re.compile(_NUM + r"\s*TFLOPS?(?:/s)?\s*(?:\(?\s*(?:dense\s+)?(?:bf16|fp16|fp8)?\s*)?peak", re.IGNORECASE),
)  # fmt: skip
_GPU_NAME_RE = re.compile(
    r"\b(?:NVIDIA\s+)?((?:H100|H200|H20|A100|A10G|A10|L40S|L40|L4|V100S?|B200|GB200|GH200|"
    r"RTX[\s-]?\d{4}|MI\d{3}X?)(?:[\s-]+(?:SXM\d?|PCIe|NVL|\d+\s?GB))*)",
    re.IGNORECASE,
)


def _number(text: str, scale: str | None = "") -> float:
    return float(text.replace(",", "")) * _SCALE.get(scale or "", 1.0)


def _scopes(doc: Document, line: int) -> list[list[str]]:
    start, end = doc.enclosing_section(line)
    claim = [doc.text(line)]
    section = [t for _, t in doc.prose(start, end)]
    return [claim, section, [t for _, t in doc.prose()]]


def _first(scopes: list[list[str]], patterns: tuple[re.Pattern[str], ...]):
    for scope in scopes:
        for text in scope:
            for pattern in patterns:
                match = pattern.search(strip_inline_code(text))
                if match:
                    return match
    return None


def _gpu_peak(scopes: list[list[str]]) -> tuple[float | None, str]:
    """Peak FLOP/s of the named GPU model, and what was used (or why not)."""
    for scope in scopes:
        text = "\n".join(scope)
        dtype = "fp8" if re.search(r"\bfp8\b", text, re.I) else "bf16"
        if (
            dtype == "bf16"
            and re.search(r"\bfp16\b", text, re.I)
            and not re.search(r"\bbf16\b", text, re.I)
        ):
            dtype = "fp16"
        names = [m.group(1) for m in _GPU_NAME_RE.finditer(text)]
        ambiguous = None
        for name in names:
            words = name.split()
            for cut in range(len(words), 0, -1):
                try:
                    spec = get_spec(" ".join(words[:cut]))
                except InputError:
                    ambiguous = name
                    continue
                if dtype in spec.peak_tflops:
                    return spec.peak_flops(dtype), f"{spec.key} {dtype} dense peak"
        if ambiguous:
            return None, f"GPU '{ambiguous}' is ambiguous (e.g. H100 SXM vs PCIe)"
    return None, "no peak TFLOP/s or exact GPU model"


def _claim(text: str) -> float | None:
    """The MFU fraction claimed on ``text``, or ``None`` (no claim, or a target)."""
    text = strip_inline_code(text)
    if not _MFU_RE.search(text) or _COMPARE_RE.search(text):
        return None
    tail = text.rsplit("=", 1)[-1] if "=" in text else text
    pct = _PCT_RE.findall(tail) or _PCT_RE.findall(text)
    if pct:
        return float(pct[-1]) / 100
    fraction = _FRACTION_RE.search(text)
    return float(fraction.group(1)) if fraction else None


def check_mfu(doc: Document) -> list[Finding]:
    """PL008 for claims that disagree with the recomputation, PL009 for unverifiable claims."""
    out: list[Finding] = []
    for line, text in doc.prose():
        claimed = _claim(text)
        if claimed is None:
            continue
        scopes = _scopes(doc, line)
        params = _first(scopes, _PARAMS_RES)
        tps = _first(scopes, (_TPS_RE,))
        per_gpu = bool(tps and _PER_GPU_RE.search(tps.group("tail")))
        gpus = _first(scopes, _GPUS_RES)
        peak = _first(scopes, _PEAK_RES)
        peak_flops, peak_note = (
            (_number(peak.group(1)) * 1e12, "stated peak") if peak else _gpu_peak(scopes)
        )
        missing = [
            what
            for what, value in (
                ("parameter count", params),
                ("tokens/s", tps),
                ("GPU count", gpus or per_gpu),
                ("peak", peak_flops),
            )
            if not value
        ]
        if missing:
            detail = f" ({peak_note})" if "peak" in missing else ""
            out.append(
                finding(
                    "PL009",
                    line,
                    f"MFU {100 * claimed:.1f}% cannot be recomputed: missing "
                    f"{', '.join(missing)}{detail}",
                )
            )
            continue
        n_params = _number(params.group(1), params.group(2))
        throughput = _number(tps.group(1), tps.group(2))
        n_gpus = 1 if per_gpu else int(gpus.group(1))
        try:
            result = utilization(throughput, 6 * n_params, peak_flops, n_gpus)
        except InputError as exc:
            why = f"MFU {100 * claimed:.1f}% cannot be recomputed: {exc}"
            out.append(finding("PL009", line, why))
            continue
        if abs(claimed - result.mfu) > MFU_TOLERANCE * result.mfu:
            scope = "per GPU" if per_gpu else f"over {n_gpus} GPU(s)"
            out.append(
                finding(
                    "PL008",
                    line,
                    f"MFU claimed {100 * claimed:.1f}% but 6 x {n_params:.3g} params x "
                    f"{throughput:,.0f} tokens/s {scope} / ({n_gpus} x {peak_flops / 1e12:g} "
                    f"TFLOP/s, {peak_note}) = {100 * result.mfu:.1f}%",
                )
            )
    return out


# ----------------------------------------------------------------------------- LoRA

_LORA_RE = re.compile(r"\b(?:q)?lora\b", re.IGNORECASE)
_R_RE = re.compile(
    r"(?:\blora_r|(?<![/\w.])r|\brank(?:\s*\(r\))?)\s*[:=]\s*(\d+)\b|\brank\s+(\d+)\b", re.I
)
_ALPHA_RE = re.compile(r"(?:\blora_alpha|\balpha|α)\s*[:=]?\s*(\d+(?:\.\d+)?)\b", re.IGNORECASE)


def check_lora(doc: Document) -> list[Finding]:
    """PL010: alpha/r of each LoRA configuration (pairs on one line first, then in order)."""
    if not any(_LORA_RE.search(text) for text in doc.lines):
        return []
    ranks: list[tuple[int, float]] = []
    alphas: list[tuple[int, float]] = []
    pairs: list[tuple[int, float, float]] = []
    for number, text in enumerate(doc.lines, start=1):
        if text.lstrip().startswith("|"):
            cells = [c.strip().replace("`", "") for c in text.strip().strip("|").split("|")]
            text = f"{cells[0]}: {cells[1]}" if len(cells) >= 2 else text
        r = [float(a or b) for a, b in _R_RE.findall(text)]
        alpha = [float(a) for a in _ALPHA_RE.findall(text)]
        if r and alpha:
            pairs += [(number, x, y) for x, y in zip(r, alpha, strict=False)]
            continue
        ranks += [(number, x) for x in r]
        alphas += [(number, y) for y in alpha]
    pairs += [(max(a[0], b[0]), a[1], b[1]) for a, b in zip(ranks, alphas, strict=False)]
    out: list[Finding] = []
    seen: set[tuple[float, float]] = set()
    for line, r, alpha in pairs:
        if r <= 0 or (r, alpha) in seen:
            continue
        seen.add((r, alpha))
        ratio = alpha / r
        if not LORA_HARD[0] <= ratio <= LORA_HARD[1]:
            severity, why = "error", f"outside {LORA_HARD[0]:g}..{LORA_HARD[1]:g}"
        elif not LORA_SOFT[0] <= ratio <= LORA_SOFT[1]:
            severity, why = "warning", f"outside the usual {LORA_SOFT[0]:g}..{LORA_SOFT[1]:g}"
        else:
            continue
        out.append(
            finding(
                "PL010",
                line,
                f"LoRA alpha/r = {alpha:g}/{r:g} = {ratio:.2f}, {why}: the update is scaled by "
                "alpha/r, so this changes the effective learning rate",
                severity,
            )
        )
    return out
