"""Which library versions a checked file will run with: the project's pins, else what is installed.

Rules whose hazard a release removed (``torch.load``'s ``weights_only`` default since torch 2.6)
ask :func:`Pin.at_least`. Pins are read from the nearest ``requirements*.txt``,
``pyproject.toml`` (``[project] dependencies``, optional dependencies), ``setup.cfg`` or
``setup.py`` at or above the file that names the package; a package pinned nowhere falls back to
the installed distribution (``importlib.metadata``, nothing imported). Versions are compared as
tuples of their leading integers (``2.6.0+cu124`` -> ``(2, 6, 0)``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGES = ("torch", "transformers", "peft", "accelerate", "lightning")
PIN_FILES = ("pyproject.toml", "setup.cfg", "setup.py")
SPEC_RE = re.compile(
    r"""(?:^|["'\s,\[])(?P<name>torch|transformers|peft|accelerate|lightning)(?![\w.-])\s*(?:\[[^\]]*\])?\s*
    (?P<spec>(?:(?:==|>=|<=|~=|!=|<|>)\s*[0-9][0-9A-Za-z.*+]*\s*,?\s*)*)""",
    re.X | re.M,
)
OP_RE = re.compile(r"(==|>=|<=|~=|!=|<|>)\s*([0-9][0-9A-Za-z.*+]*)")


def vtuple(text: str) -> tuple[int, ...]:
    """``"2.6.0+cu124"`` -> ``(2, 6, 0)``; leading integers only."""
    out = []
    for part in re.split(r"[.+-]", text):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
    return tuple(out)


@dataclass(frozen=True)
class Pin:
    """The versions of one package a project allows: ``low`` <= v (< ``high``), either unknown."""

    name: str
    low: tuple[int, ...] | None
    high: tuple[int, ...] | None
    source: str  # "examples/imagenet/requirements.txt: torch>=2.6" or "installed 2.13.0"

    def at_least(self, version: tuple[int, ...]) -> bool:
        """Every allowed version is >= ``version``."""
        return self.low is not None and self.low >= version


def parse_specs(text: str, where: str) -> dict[str, Pin]:
    """Pins named in one file's text (requirement lines or quoted requirement strings)."""
    out: dict[str, Pin] = {}
    for m in SPEC_RE.finditer(text):
        name, spec = m.group("name"), m.group("spec") or ""
        low = high = None
        for op, ver in OP_RE.findall(spec):
            v = vtuple(ver)
            if op in ("==", ">=", "~=", ">"):
                low = v if low is None else max(low, v)
            if op == "==":
                high = v
            if op in ("<", "<="):
                high = v
        line = " ".join(m.group(0).strip(" \"'[,").split())
        prev = out.get(name)
        if prev is None or (prev.low is None and low is not None):
            out[name] = Pin(name, low, high, f"{where}: {line}")
    return out


@lru_cache(maxsize=4096)
def _pins_in_dir(d: Path) -> dict[str, Pin]:
    out: dict[str, Pin] = {}
    try:
        files = sorted(d.glob("requirements*.txt")) + [d / n for n in PIN_FILES]
    except OSError:
        return out
    for f in files:
        if not f.is_file():
            continue
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for name, pin in parse_specs(text, str(f)).items():
            out.setdefault(name, pin)
    return out


META_SUFFIXES = (".dist-info", ".egg-info", ".egg")


def _norm(name: str) -> str:
    """PEP 503 name normalization (``Foo.Bar-baz`` -> ``foo_bar_baz``, dist-info style)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_info_version(name: str) -> str | None:
    """The version in the name of the first ``<name>-<version>.dist-info`` folder on
    ``sys.path`` (the folders importlib.metadata reads, in its order); "" when no folder on the
    path names the distribution; None when only importlib.metadata can tell (an ``.egg-info``,
    several candidates in one folder). Saves importing importlib.metadata, about 16 ms, a
    fifth of the analyzer's start-up."""
    want = _norm(name)
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                hits = [
                    e.name
                    for e in it
                    if e.name.endswith(META_SUFFIXES)
                    and _norm(e.name.rsplit(".", 1)[0].partition("-")[0]) == want
                ]
        except OSError:
            continue
        if hits:
            if len(hits) == 1 and hits[0].endswith(".dist-info"):
                return hits[0][:-10].partition("-")[2] or None
            return None
    return ""


@lru_cache(maxsize=16)
def installed(name: str) -> Pin | None:
    """The installed distribution's version (None when not installed)."""
    v = _dist_info_version(name)
    if v == "":
        return None
    if v is None:  # an egg-info or several candidates: ask importlib.metadata
        from importlib import metadata

        try:
            v = metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    t = vtuple(v)
    return Pin(name, t, t, f"installed {v}")


@lru_cache(maxsize=4096)
def versions_for(directory: Path) -> dict[str, Pin]:
    """Package -> :class:`Pin` for code in ``directory``: the nearest file naming the package
    with a version wins; a package named without a version (or nowhere) falls back to the
    installed one."""
    found: dict[str, Pin] = {}
    for d in (directory, *directory.parents):
        for name, pin in _pins_in_dir(d).items():
            if name not in found and (pin.low is not None or pin.high is not None):
                found[name] = pin
        if (d / ".git").exists():
            break
    for name in PACKAGES:
        if name not in found:
            inst = installed(name)
            if inst is not None:
                found[name] = inst
    return found
