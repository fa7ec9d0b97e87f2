"""Keyword parameters of installed library callables, read from their source without importing.

``keywords("torch.utils.data.DataLoader")`` finds the installed ``torch`` package
(``importlib.util.find_spec`` of the top-level name only: nothing is imported), walks
``torch/utils/data/__init__.py`` -> ``from torch.utils.data.dataloader import DataLoader`` ->
``class DataLoader`` -> ``__init__``, and returns its parameter names, or None when they cannot
be known for sure (``**kwargs``, a decorator that may change the signature, a class without its
own ``__init__``, a name the import chain does not lead to, a C extension).
"""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path

PACKAGES = ("torch",)  # libraries whose signatures are checked when installed
MAX_HOPS = 4


@lru_cache(maxsize=8)
def package_dir(top: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=256)
def _module_tree(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    base = package_dir(parts[0])
    if base is None:
        return None
    p = base
    for part in parts[1:]:
        p = p / part
    for cand in (p / "__init__.py", p.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def _find(module: str, name: str, hops: int) -> ast.AST | None:
    """The def/class ``name`` of ``module``, following ``from X import name`` re-exports."""
    f = _module_file(module)
    tree = _module_tree(f) if f else None
    if tree is None:
        return None
    defs = [
        n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name
    ]
    if defs:
        return defs[0] if len(defs) == 1 else None  # overloads / redefinitions: not sure
    if hops <= 0:
        return None
    is_pkg = f.name == "__init__.py"  # type: ignore[union-attr]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if (a.asname or a.name) != name:
                    continue
                src = node.module or ""
                if node.level:
                    base = module.split(".")
                    base = base if is_pkg else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    src = ".".join([*base, src] if src else base)
                return _find(src, a.name, hops - 1)
    return None


PLAIN_DECORATORS = {"staticmethod", "classmethod", "property", "final", "overload", "override"}


def _params(fn: ast.FunctionDef, skip_self: bool) -> frozenset[str] | None:
    if any(not (isinstance(d, ast.Name) and d.id in PLAIN_DECORATORS) for d in fn.decorator_list):
        return None  # a wrapper may change the signature
    a = fn.args
    if a.kwarg is not None:
        return None
    names = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
    posonly = {x.arg for x in a.posonlyargs}
    if skip_self and names:
        names = names[1:]
    return frozenset(n for n in names if n not in posonly)


@lru_cache(maxsize=1024)
def keywords(q: str) -> frozenset[str] | None:
    """Keyword names callable ``q`` (a dotted path into an installed package) accepts."""
    module, _, name = q.rpartition(".")
    if not module or module.split(".")[0] not in PACKAGES or not name.isidentifier():
        return None
    node = _find(module, name, MAX_HOPS)
    if isinstance(node, ast.FunctionDef):
        return _params(node, skip_self=False)
    if isinstance(node, ast.ClassDef):
        if node.decorator_list:
            return None  # dataclass-like: the signature is generated
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                return _params(item, skip_self=True)
    return None
