"""LC0xx: names and imports a run would fail on (pyflakes), keyword arguments against the
installed library's signatures."""

from __future__ import annotations

import ast
import difflib
import re
import sys
from functools import lru_cache
from types import SimpleNamespace

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts

PY = ("python",)
RUN_CALLS = ("DataLoader", "Trainer", "SFTTrainer", "from_pretrained", "init_process_group")
DYNAMIC = ("exec(", "globals()[", "globals().update", "locals()[", "__builtins__[", "vars()[")
KNOWN_TOP = (
    "torch", "torchvision", "torchaudio", "transformers", "datasets", "accelerate", "peft",
    "trl", "lightning", "pytorch_lightning", "deepspeed", "numpy", "pandas", "sklearn", "scipy",
    "matplotlib", "tqdm", "wandb", "mlflow", "tensorboard", "einops", "safetensors",
    "tokenizers", "evaluate", "bitsandbytes", "vllm", "sglang", "timm", "yaml", "PIL",
)  # fmt: skip


def runs(mod: ModuleFacts) -> bool:
    """The file is run code: a script (``__main__`` block), a training step, or builds the
    pieces of a run (optimizer, loader, trainer, pretrained model), or is imported by such a
    file among the checked ones. Library modules are left to ruff/pyflakes proper."""
    if mod.program is not None and mod.path in mod.program.run_closure:
        return True
    return is_run_file(mod)


def is_run_file(mod: ModuleFacts) -> bool:
    """A script (``__main__`` block), a backward pass or a call building a run's pieces; it
    depends on the file alone, so it is worked out once per file."""
    if mod._run_file is None:
        mod._run_file = bool(
            (mod.spells("__main__") and MAIN_RE.search(mod.source))
            or mod.calls_attr("backward")
            or mod.calls_q(*RUN_CALLS)
        )
    return mod._run_file


MAIN_RE = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]""", re.M)


def _at(line: int, col: int) -> SimpleNamespace:
    return SimpleNamespace(lineno=line, col_offset=col)


def _undefined(mod: ModuleFacts) -> list[tuple[int, int, str, str]]:
    """(line, col, name, hint) for each undefined name pyflakes reports in run code; hint is
    '' when nothing suggests what was meant."""
    if "pyflakes" in mod._cache:
        return mod._cache["pyflakes"]
    out: list[tuple[int, int, str, str]] = []
    mod._cache["pyflakes"] = out
    if not runs(mod) or any(d in mod.source for d in DYNAMIC):
        return out
    from pyflakes import messages
    from pyflakes.checker import Checker

    try:
        checker = Checker(mod.tree, filename=mod.path)
    except Exception:  # pyflakes on an odd tree (or too deep): no finding, no crash
        return out
    for m in checker.messages:
        if isinstance(m, messages.UndefinedName | messages.UndefinedLocal):
            name = m.message_args[0]
            text = mod.lines[m.lineno - 1].lstrip() if 0 < m.lineno <= len(mod.lines) else ""
            if text.startswith("del "):
                continue  # `del submodule` in a package __init__: bound by the import system
            out.append((m.lineno, m.col, name, _hint(mod, name, m.lineno)))
    return out


@rule(
    "LC001",
    "undefined-name",
    "error",
    PY,
    """Flags a name that is used but never defined or imported (pyflakes' undefined-name check)
    when it is a near-miss of a name that exists (``torhc.zeros``) or a standard alias whose
    import is missing (``nn``, ``F``, ``np`` without ``import torch.nn as nn``...). The run gets
    through data loading, model building and maybe hours of training before the line executes
    and raises ``NameError``. Checked on run code: scripts, training code, and the checked
    files they import; files that build names dynamically (``exec``, ``globals()[...]``) are
    skipped. Other undefined names are LC004.""",
    "define or import the name (check the spelling)",
)
def undefined_name(mod: ModuleFacts):
    for line, col, name, hint in _undefined(mod):
        if hint:
            yield Hit(_at(line, col), f"'{name}' is not defined: {hint}")


@rule(
    "LC004",
    "undefined-name-unknown",
    "info",
    PY,
    """Flags a name that is used but never defined or imported, with no near-miss or known
    alias to suggest what was meant (``train_loader`` in a snippet that expects it from
    elsewhere). It raises ``NameError`` if the line runs; often the file is a fragment meant to
    be pasted or exec'd, so this is advisory.""",
    "define or import the name, or pass it in",
)
def undefined_name_unknown(mod: ModuleFacts):
    for line, col, name, hint in _undefined(mod):
        if not hint:
            yield Hit(_at(line, col), f"'{name}' is not defined anywhere in this file")


def _hint(mod: ModuleFacts, name: str, line: int = 0) -> str:
    known = set(mod.imports) | set(KNOWN_TOP)  # modules and imported names: typos of these
    close = [  # `torhc` for `torch`; not `get_ident` for `_get_ident` (another name)
        c
        for c in difflib.get_close_matches(name, sorted(known - {name}), n=3, cutoff=0.8)
        if name not in c and c not in name
    ]
    if close:
        return f"did you mean '{close[0]}'?"
    if len(name) >= 5 and name not in _bound_names(mod):
        # a misspelt local: `val_laoder` where the parameter is `val_loader`, bound in the same
        # function (a name bound elsewhere in the file is pyflakes' flow analysis, e.g. set
        # later in a loop; a near-miss that only adds a prefix/suffix or changes the case of
        # the first letter is another name, `frozendict` / `is_frozendict`, `Ligature` /
        # `ligature`: no hint)
        local = _function_names(mod, line)
        for c in difflib.get_close_matches(name, sorted(local - {name}), n=3, cutoff=0.85):
            if c[0] != name[0] or name in c or c in name:
                continue
            return f"did you mean '{c}'?"
    if name in ("nn", "F", "optim", "np", "pd", "plt", "dist"):
        full = {
            "nn": "import torch.nn as nn",
            "F": "import torch.nn.functional as F",
            "optim": "import torch.optim as optim",
            "np": "import numpy as np",
            "pd": "import pandas as pd",
            "plt": "import matplotlib.pyplot as plt",
            "dist": "import torch.distributed as dist",
        }[name]
        return f"missing '{full}'?"
    return ""


def _function_names(mod: ModuleFacts, line: int) -> set[str]:
    """Names bound in the function around ``line``: its parameters and assignments."""
    from toolkit.static.rules._common import enclosing_function

    f, _key = enclosing_function(mod, line)
    if f is None:
        return set()
    a = f.args  # type: ignore[attr-defined]
    out = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    for n in ast.walk(f):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
    return out


def _bound_names(mod: ModuleFacts) -> set[str]:
    """Every name the file binds: assignments, parameters, functions, classes, imports."""
    if "bound_names" not in mod._cache:
        out = {k for k in mod.assigns if k.isidentifier()}
        out |= {a.arg for a in mod.nodes(ast.arg)}
        out |= {n.name for n in mod.nodes(ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)}
        out |= {n.id for n in mod.nodes(ast.Name) if isinstance(n.ctx, ast.Store)}
        mod._cache["bound_names"] = out | set(mod.imports)
    return mod._cache["bound_names"]


@lru_cache(maxsize=1)
def _installed_tops() -> frozenset[str]:
    from importlib import metadata

    try:
        tops = set(metadata.packages_distributions())
    except Exception:  # pragma: no cover - broken metadata
        tops = set()
    return frozenset(tops | set(sys.stdlib_module_names) | set(KNOWN_TOP))


def _importable(top: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _guarded(mod: ModuleFacts) -> set[int]:
    """Lines of imports inside ``try`` blocks (optional dependencies)."""
    out: set[int] = set()
    for t in mod.nodes(ast.Try):
        for st in t.body:
            for n in ast.walk(st):
                if isinstance(n, ast.Import | ast.ImportFrom):
                    out.add(n.lineno)
    return out


def _one_edit(top: str, k: str) -> bool:
    """``k`` passes LC002's filter for ``top`` (one edit, not shorter, similar enough for
    ``difflib.get_close_matches`` at cutoff 0.7): a necessary condition for a finding."""
    if k == top or len(top) > len(k) or len(k) - len(top) > 1 or edits(top, k) != 1:
        return False
    return difflib.SequenceMatcher(None, k, top).ratio() >= 0.7  # as get_close_matches


def edits(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (``torhc`` -> ``torch``: 1)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


@rule(
    "LC002",
    "unresolved-import",
    "error",
    PY,
    """Flags an import of a top-level module that is not installed, not in the standard
    library and not among the checked files, when its name is one edit (a swap, a missing,
    extra or wrong letter) from a module of the ML stack or one the file imports correctly
    (``import torhc``, ``from trnasformers import ...``, ``import nunpy``): a typo that raises
    ``ModuleNotFoundError`` at start-up on every machine. Checked on run code, like LC001. A missing package with no close match
    is not flagged (it may be installed where the code runs), nor is one close to a checked
    file's own module; imports inside ``try`` are skipped.""",
    "fix the module name",
)
def unresolved_import(mod: ModuleFacts):
    imports = mod.nodes(ast.Import, ast.ImportFrom)
    if not imports or not runs(mod):
        return
    local = set(mod.program.top_names) if mod.program is not None else set()
    # what a typo would have meant: the ML stack, or a module this file imports correctly
    # (those installed); `near` is the same before the installed check, a superset of it
    near = set(KNOWN_TOP) | {o.split(".", 1)[0] for o in mod.imports.values()}
    wanted = None
    guarded = None
    for node in imports:
        if isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                continue
            tops = [node.module.split(".")[0]]
        else:
            tops = [a.name.split(".")[0] for a in node.names]
        for top in tops:
            if top in local or top in sys.stdlib_module_names or top in KNOWN_TOP:
                continue  # (both sets are part of the installed tops)
            if top.rstrip("0123456789") != top:
                continue  # urllib3, pkg2: a versioned sibling package, not a typo
            if not any(_one_edit(top, k) for k in near):
                continue  # no candidate at all: spare reading every installed distribution
            if _importable(top) or top in _installed_tops():
                continue
            if wanted is None:
                wanted = near & (_installed_tops() | set(KNOWN_TOP))
            close = [
                k
                for k in difflib.get_close_matches(top, sorted(wanted), n=3, cutoff=0.7)
                if k != top and edits(top, k) == 1 and len(top) <= len(k)
            ]  # a swap, a wrong or a missing letter; one extra letter is often a real package
            if not close:
                continue
            if guarded is None:
                guarded = _guarded(mod)
            if node.lineno in guarded:
                continue
            yield Hit(node, f"no module named '{top}': did you mean '{close[0]}'?")


@rule(
    "LC003",
    "unknown-keyword-argument",
    "error",
    PY,
    """Flags a keyword argument that the installed library's callable does not accept
    (``DataLoader(ds, num_worker=4)``, ``AdamW(params, weight_decy=0.01)``): ``TypeError`` at the
    call. Parameters are read from the installed package's source without importing it
    (currently torch); callables taking ``**kwargs``, decorated or private ones and names the
    import chain does not lead to are not checked. Checked on run code, like LC001.""",
    "use a parameter the installed version accepts (see its signature)",
)
def unknown_keyword(mod: ModuleFacts):
    from toolkit.static.signatures import PACKAGES, keywords

    if not any(mod.imported(p) for p in PACKAGES) or not runs(mod):
        return
    for c in mod.all_calls:
        if not c.keywords or isinstance(c.func, ast.Call):
            continue
        q = mod.resolve(c.func)
        if not q or q.split(".", 1)[0] not in PACKAGES or "._" in q:
            continue  # private APIs change between releases: the installed one may not be yours
        if q.split(".", 1)[0] not in {o.split(".", 1)[0] for o in mod.imports.values()}:
            continue
        names = [k.arg for k in c.keywords if k.arg is not None]
        if not names:
            continue
        accepted = keywords(q)
        if accepted is None:
            continue
        for k in names:
            if k not in accepted:
                close = difflib.get_close_matches(k, sorted(accepted), n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'?" if close else "TypeError at the call"
                yield Hit(c, f"'{q}' takes no keyword '{k}' in the installed version: {hint}")
