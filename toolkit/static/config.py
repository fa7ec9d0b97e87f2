"""``[tool.labcoat.static]`` from the checked project's pyproject.toml.

Keys: ``select`` and ``ignore`` (codes or prefixes such as ``"LC4"``), ``per-file-ignores``
(glob -> codes). The nearest pyproject.toml above the first checked path wins.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.errors import InputError


@dataclass
class StaticConfig:
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    source: Path | None = None

    def ignored_for(self, path: Path) -> list[str]:
        out: list[str] = []
        text = path.as_posix()
        for pattern, codes in self.per_file_ignores.items():
            if (
                fnmatch.fnmatch(text, pattern)
                or fnmatch.fnmatch(path.name, pattern)
                or fnmatch.fnmatch(text, "*/" + pattern)
            ):
                out.extend(codes)
        return out


def _codes(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of rule codes such as ['LC101', 'LC4']")
    return [v.strip().upper() for v in value]


def find_pyproject(start: Path) -> Path | None:
    p = start.resolve()
    if p.is_file():
        p = p.parent
    for d in (p, *p.parents):
        cand = d / "pyproject.toml"
        if cand.is_file():
            return cand
    return None


def load_config(start: Path) -> StaticConfig:
    path = find_pyproject(start)
    if path is None:
        return StaticConfig()
    import tomllib  # here: --no-config runs never need it

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read TOML ({exc})") from None
    section = data.get("tool", {}).get("labcoat", {}).get("static")
    if section is None:
        return StaticConfig(source=path)
    if not isinstance(section, dict):
        raise InputError(f"{path}: [tool.labcoat.static] must be a table")
    where = f"{path} [tool.labcoat.static]"
    cfg = StaticConfig(source=path)
    if "select" in section:
        cfg.select = _codes(section["select"], f"{where} select")
    if "ignore" in section:
        cfg.ignore = _codes(section["ignore"], f"{where} ignore")
    pfi = section.get("per-file-ignores", section.get("per_file_ignores", {}))
    if not isinstance(pfi, dict):
        raise InputError(f"{where} per-file-ignores: expected a table of glob = [codes]")
    cfg.per_file_ignores = {
        str(k): _codes(v, f"{where} per-file-ignores {k!r}") for k, v in pfi.items()
    }
    return cfg
