"""The rule catalogue: the one source of truth for codes, names, severities and docs.

Every rule is a function decorated with :func:`rule`; the listing (``python -m
toolkit.static.rules``), SARIF rule metadata and the docs are all read from :data:`REGISTRY`.

Code ranges (stable):

| range | area |
|---|---|
| LC0xx | names and imports a run fails on (pyflakes), keyword arguments vs. installed signatures |
| LC1xx | training loop: gradients, step order, accumulation |
| LC2xx | train/eval mode, no_grad in evaluation |
| LC3xx | loss functions fed the wrong thing |
| LC4xx | mixed precision (AMP, GradScaler, fp16/bf16) |
| LC5xx | data loading (shuffle, samplers, workers) |
| LC6xx | device handling |
| LC7xx | checkpointing |
| LC8xx | Hugging Face transformers, PEFT, tokenizers |
| LC9xx | inference servers (vLLM/SGLang), sampling, reproducibility |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("error", "warning", "info")

AREAS = {
    "LC0": "names and imports",
    "LC1": "training loop",
    "LC2": "eval mode",
    "LC3": "losses",
    "LC4": "mixed precision",
    "LC5": "data loading",
    "LC6": "device",
    "LC7": "checkpointing",
    "LC8": "transformers/PEFT/tokenizers",
    "LC9": "inference servers/reproducibility",
}


@dataclass
class Hit:
    """One place a rule fires: a node (or line/col) and a message naming what is involved."""

    node: Any
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    frameworks: tuple[str, ...]
    doc: str
    fix: str
    check: Callable[[Any], Iterable[Hit]] = field(compare=False, repr=False)

    @property
    def area(self) -> str:
        return AREAS.get(self.code[:3], "other")

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "area": self.area,
            "frameworks": list(self.frameworks),
            "doc": self.doc,
            "fix": self.fix,
        }


REGISTRY: dict[str, Rule] = {}


def rule(
    code: str, name: str, severity: str, frameworks: Iterable[str], doc: str, fix: str
) -> Callable[[Callable[[Any], Iterable[Hit]]], Callable[[Any], Iterable[Hit]]]:
    """Register ``check(module_facts) -> Iterable[Hit]`` as rule ``code``."""
    if severity not in SEVERITIES:
        raise ValueError(f"{code}: severity {severity!r} not in {SEVERITIES}")

    def deco(fn: Callable[[Any], Iterable[Hit]]) -> Callable[[Any], Iterable[Hit]]:
        if code in REGISTRY:
            raise ValueError(f"duplicate rule code {code}")
        REGISTRY[code] = Rule(
            code, name, severity, tuple(frameworks), " ".join(doc.split()), fix, fn
        )
        return fn

    return deco


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code (imports the rule modules once)."""
    from toolkit.static import rules as _rules  # noqa: F401  (registers on import)

    return [REGISTRY[c] for c in sorted(REGISTRY)]
