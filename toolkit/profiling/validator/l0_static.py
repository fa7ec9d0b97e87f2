"""L0 before L1: the static analyzer over the training script the runtime validator is about to run.

The script is found without running it: ``--script PATH`` itself, or the source file of the
``--entry`` module (``importlib.util.find_spec``, which imports parent packages only). Rules and
suppressions come from the checked project's ``[tool.labcoat.static]``, as for
``python -m toolkit.static.check``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from toolkit.errors import InputError
from toolkit.profiling.validator.checks import Check
from toolkit.static.check import check_paths
from toolkit.static.config import load_config
from toolkit.static.output import CheckResult


def entry_source(entry: str) -> Path | None:
    """The file that defines ``module:function`` or ``path.py:function``; None if it has none."""
    module, _, _ = entry.rpartition(":")
    if module.endswith(".py"):
        return Path(module)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec else None
    return Path(origin) if origin and origin.endswith(".py") else None


def run_l0(path: Path | None) -> tuple[CheckResult | None, Check]:
    """Check ``path``; the verdict line fails on any error-level finding."""
    if path is None or not path.is_file():
        return None, Check("L0 static check", "skip", f"no Python source file to check ({path})")
    try:
        result = check_paths([path], config=load_config(path.resolve().parent))
    except InputError as exc:  # a broken [tool.labcoat.static] in the checked project
        return None, Check("L0 static check", "skip", f"not run: {exc}")
    errors = [f for f in result.findings if f.severity == "error"]
    others = len(result.findings) - len(errors)
    if result.parse_errors:
        return result, Check(
            "L0 static check", "fail", f"{path} does not parse: {result.parse_errors[0]['error']}"
        )
    if errors:
        shown = "; ".join(f"{f.code} line {f.line}: {f.message}" for f in errors[:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        return result, Check(
            "L0 static check", "fail", f"{len(errors)} error(s) in {path}: {shown}{more}"
        )
    return result, Check(
        "L0 static check", "pass", f"{path}: no error-level finding ({others} warning/info)"
    )
