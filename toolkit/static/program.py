"""Whole-program facts: a call graph over the files checked together and per-function summaries.

Phase 1 summarizes every file (:func:`summarize`): for each function what it does that rules care
about across a call, for each ``nn.Module`` class what ``forward`` returns, and for each call site
the context it runs in. :class:`Program` indexes the summaries by dotted name; phase 2 hands it to
every module's facts (``ModuleFacts.program``) so rules see through helpers defined in other
files (the callee's effects become events at the call site) and through callers (a helper's
loop runs under the caller's ``no_grad`` or after the caller's ``model.eval()``).

Names resolve the way imports read: ``from utils.train import evaluate`` is ``utils.train.evaluate``
and matches a checked file ``.../utils/train.py`` (or ``train.py``) by module-path suffix.
"""

from __future__ import annotations

import ast
import os
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from sys import intern
from typing import NamedTuple

from toolkit.static.engine import calls_in, cond_text, dotted, strip_moves

HEADS = ("softmax", "log_softmax", "sigmoid", "logits")
LOGIT_RE = re.compile("logit", re.I)
# call sites are recorded (for the callee's rules) only in files that can give them a context
BUILTINS = frozenset(dir(__import__("builtins")))
NOT_CHECKED = frozenset(  # library tops no project names a file after (not "datasets", "data")
    ("torch", "numpy", "np", "F", "nn", "dist", "pd", "plt", "transformers", "accelerate",
     "peft", "trl", "tqdm", "wandb", "mlflow", "einops", "timm", "torchvision", "lightning",
     "pytorch_lightning", "deepspeed", "sklearn", "scipy", "matplotlib", "yaml", "PIL",
     "safetensors", "vllm", "sglang", "os", "sys", "re", "json", "math", "time", "logging",
     "argparse", "pathlib", "itertools", "functools", "collections", "typing", "subprocess",
     "shutil", "random", "copy", "glob", "pickle", "warnings", "dataclasses", "datetime",
     "contextlib")
)  # fmt: skip
# top-level names an absolute import takes from the standard library or an installed library
EXTERNAL_TOPS = NOT_CHECKED | frozenset(__import__("sys").stdlib_module_names)
CALLER_CONTEXT = (
    "no_grad", "inference_mode", ".eval()", "rank", "main_process", "train(False)", "LR(",
    "Loss(",
)  # fmt: skip
RANK_RE = re.compile(
    r"rank|main_process|is_main|master|is_world_process_zero|local_main|global_zero|gpu_id\s*==\s*0",
    re.I,
)


RANK_WORDS = ("rank", "main", "master", "zero", "gpu_id")  # one is in every RANK_RE match


def rank_test(text: str) -> bool:
    """``RANK_RE.search(text)``, skipping the regex where no word of it occurs (ASCII text;
    case-insensitive matching can pair other characters with ASCII letters)."""
    if text.isascii():
        low = text.lower()
        if not any(w in low for w in RANK_WORDS):
            return False
    return bool(RANK_RE.search(text))


@dataclass
class FuncSummary:
    """What calling one function does, as far as rules need it. Parameter positions index
    ``params`` (``self`` included for methods)."""

    name: str
    module: str  # dotted module path of its file
    path: str
    line: int
    params: list[str] = field(default_factory=list)
    returns: str = ""  # one of HEADS when every return ends with it, else ""
    returns_ref: str = ""  # "cls:<q>" / "func:<q>": returns what a checked class/function makes
    returns_pretrained: bool = False  # returns a model built by from_pretrained
    pretrained_at: int = -1  # ...as this element of a returned tuple (-1: the whole value)
    returns_eval: bool = False  # returns a model it switched to eval()
    returns_optimizer: bool = False  # returns a torch.optim (or bnb/transformers) optimizer
    returns_loss: str = ""  # the loss class it returns ("CrossEntropyLoss"), partials included
    returns_elems: tuple[str, ...] = ()  # refs of `return a, b, c` elements (see arg_ref)
    clears_grads: list[str] = field(default_factory=list)  # receivers of zero_grad / grad=None
    sets_eval: list[str] = field(default_factory=list)  # receivers switched to eval()
    sets_train: list[str] = field(default_factory=list)  # receivers switched to train()
    no_grad: bool = False  # decorated with no_grad / inference_mode
    steps_scheduler: bool = False
    backward: bool = False  # runs a backward pass (loss.backward(), accelerator.backward(...))
    builds_loader: str = ""  # "sampler" / "plain" (a DataLoader without any sampler) / ""
    dist_sampler: bool = False  # builds a shuffling DistributedSampler (set_epoch matters)
    train_loader_keeps_last: int = 0  # line of a training DataLoader without drop_last=True
    loader_line: int = 0
    sets_epoch: bool = False


@dataclass
class ClassSummary:
    name: str
    module: str
    path: str
    forward_head: str = ""  # softmax / log_softmax / sigmoid when forward always ends with it
    batchnorm: bool = False  # builds nn.BatchNorm1d layers (a batch of one raises in training)
    mode_dependent: bool = True  # has layers train()/eval() changes (dropout, batch norm, ...)
    forward_ref: str = ""  # "cls:<q>": forward returns a submodule of a class in another file


class CallSite(NamedTuple):
    """One call of a (possibly other-module) function: where, and in what context. A named
    tuple: thousands cross between processes, and tuples pickle in half the time."""

    q: str  # resolved dotted callee as written at the call site
    path: str
    line: int
    no_grad: bool
    eval_before: bool  # a model was switched to eval() earlier on the same path
    rank_guarded: bool = False  # under `if rank == 0` (or is_main_process, ...)
    caller: str = "<module>"  # the function the call is in
    prior: tuple[str, ...] = ()  # callees called earlier in the same function (most recent last)
    epoch_schedulers: tuple[tuple[int, str], ...] = ()  # (arg position, "StepLR(30)") passed
    args: tuple[str, ...] = ()  # dotted text of each positional argument ("" when not a name)
    refs: tuple[str, ...] = ()  # what each positional argument is (see arg_ref), "" unknown
    in_loop: bool = False  # inside a loop or comprehension over a data loader (once per batch)
    target: str = ""  # the name the result is assigned to (`train_loader = make(...)`), "" none


@dataclass
class ModuleSummary:
    path: str
    names: list[str]  # dotted module names this file answers to (all path suffixes)
    functions: dict[str, FuncSummary] = field(default_factory=dict)  # "f" or "Cls.f"
    classes: dict[str, ClassSummary] = field(default_factory=dict)
    calls: list[CallSite] = field(default_factory=list)
    sets_epoch: bool = False
    distributed: bool = False
    is_run: bool = False  # a script or training code (see rules.names.is_run_file)
    saves: bool = False  # calls torch.save (writes files that torch.load may read back)
    uses_scaler: bool = False  # creates a GradScaler
    causal_lm: bool = False  # loads a Hugging Face causal LM (which shifts labels itself)
    trains: bool = False  # runs a backward pass
    grad_ctx: bool = False  # runs a backward pass or a no_grad / inference_mode block
    bn1d: bool = False  # trains a model built with nn.BatchNorm1d (a batch of one raises)
    train_iters: tuple[str, ...] = ()  # names a loop with a backward pass iterates

    imports: list[str] = field(default_factory=list)  # dotted origins of its imports
    relative_imports: dict[str, int] = field(default_factory=dict)  # `from .x import`: dots
    size: int = 0  # AST nodes: what the file costs to analyze

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["calls"] = [tuple(c) for c in self.calls]  # plain tuples pickle fastest
        return state

    def __setstate__(self, state: dict) -> None:
        state["calls"] = list(map(CallSite._make, state["calls"]))
        self.__dict__.update(state)


def module_names(path: Path, roots: list[Path]) -> list[str]:
    """``pkg/sub/mod.py`` -> ``["pkg.sub.mod", "sub.mod", "mod"]`` (``__init__`` -> the package)."""
    parts = list(path.with_suffix("").parts)
    for r in roots:
        try:
            parts = list(
                path.with_suffix("").relative_to(r.parent if r.is_dir() else r.parent).parts
            )
            break
        except ValueError:
            continue
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    parts = [p for p in parts if p not in ("", ".", "/")][-6:]
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]


def _importable_name(path: str, package_dirs: set[str]) -> str:
    """``timm/models/vit.py`` -> ``timm.models.vit`` when ``timm/`` and ``timm/models/`` are
    packages (a checked ``__init__.py``): the dotted path up from the outermost package, the
    name an absolute import finds the file by."""
    base = os.path.basename(path)
    parts = [] if base == "__init__.py" else [os.path.splitext(base)[0]]
    d = os.path.dirname(path)
    while d in package_dirs:
        parts.append(os.path.basename(d))
        up = os.path.dirname(d)
        if up == d:
            break
        d = up
    return ".".join(reversed(parts))


class Program:
    """Summaries of every checked file, looked up by the dotted names calls resolve to."""

    def __init__(self, summaries: list[ModuleSummary]) -> None:
        self.modules = summaries
        self._backward_names: tuple[str, ...] | None = None
        self.funcs: dict[str, list[FuncSummary]] = {}
        self.classes: dict[str, list[ClassSummary]] = {}
        self.calls_by_name: dict[str, list[CallSite]] = {}
        self.sets_epoch = any(m.sets_epoch for m in summaries)
        self.dist_sampler_builders = any(  # some function builds a shuffling DistributedSampler
            f.dist_sampler for m in summaries for f in m.functions.values()
        )
        self.any_pretrained = any(
            f.returns_pretrained for m in summaries for f in m.functions.values()
        )
        for m in summaries:
            for key, fs in m.functions.items():
                self.funcs.setdefault(key.rsplit(".", 1)[-1], []).append(fs)
            for key, cs in m.classes.items():
                self.classes.setdefault(key, []).append(cs)
            for c in m.calls:
                self.calls_by_name.setdefault(c.q.rsplit(".", 1)[-1], []).append(c)
        self._mod_names = {m.path: m.names for m in summaries}
        self.all_names = {n for m in summaries for n in m.names}
        self.top_names = {n.split(".", 1)[0] for n in self.all_names}
        by_name: dict[str, list[str]] = {}
        for m in summaries:
            for n in m.names:
                by_name.setdefault(n, []).append(m.path)
        self._by_name = by_name
        self._by_path = {m.path: m for m in summaries}
        self._package_dirs = {
            os.path.dirname(m.path) for m in summaries if os.path.basename(m.path) == "__init__.py"
        }
        by_full: dict[str, list[str]] = {}  # the name `import` finds a file by -> paths
        self._importable: dict[str, str] = {}
        for m in summaries:
            name = self._importable[m.path] = _importable_name(m.path, self._package_dirs)
            by_full.setdefault(name, []).append(m.path)
        self._by_full = by_full
        self._importers: dict[str, list[str]] | None = None  # path -> paths importing it
        self._target_memo: dict[tuple[str, int, str], tuple[str, list[str]]] = {}
        self.save_folders = {str(Path(m.path).parent) for m in summaries if m.saves}
        self.run_closure: set[str] = set()
        for m in summaries:
            if not m.is_run:
                continue
            self.run_closure.add(m.path)
            own = set(m.names)
            rel = m.relative_imports
            for origin in m.imports:  # the checked files a run file imports (one level)
                self.run_closure.update(self._targets(origin, own, rel.get(origin, 0), m.path))
        self._propagate()

    def param_refs(self, path: str, func: str, param: str) -> set[tuple[str, str]]:
        """What the callers pass as parameter ``param`` of function ``func`` (``"f"`` or
        ``"Cls.__init__"``) of file ``path``: (argument ref or "" when unknown, caller's path)
        for each call site."""
        fs = next(
            (
                f
                for f in self.funcs.get(func.rsplit(".", 1)[-1], [])
                if f.path == path and f.name == func
            ),
            None,
        )
        if fs is None or param not in fs.params:
            return set()
        cls, _, name = func.rpartition(".")
        i = fs.params.index(param)
        if cls:
            if name != "__init__":
                return set()
            sites = self.callers(path, cls)  # constructor calls
            i -= 1  # self
        else:
            sites = self.callers(path, name)
        out = set()
        for s in sites:
            out.add((s.refs[i] if i < len(s.refs) else "", s.path))
        return out

    def resolve(self, ref: str, path: str = "", depth: int = 0) -> str:
        """Follow ``func:<q>#i`` (element i of what a checked function returns) to the ref of
        that element; other refs unchanged."""
        kind, _, rest = ref.partition(":")
        if kind != "func" or "#" not in rest or depth > 3:
            return ref
        q, _, i = rest.rpartition("#")
        fs = self.function(q, path=path)
        if fs is None or not i.isdigit() or int(i) >= len(fs.returns_elems):
            return ""
        return self.resolve(fs.returns_elems[int(i)], fs.path, depth + 1)

    def per_batch(self, path: str, func: str) -> bool:
        """Every call of ``func`` (of file ``path``) sits in a loop or comprehension over a data
        loader: the function runs once per batch."""
        sites = self.callers(path, func)
        return bool(sites) and all(s.in_loop for s in sites)

    def ref_head(self, ref: str, path: str = "", depth: int = 0) -> str:
        """The output head (softmax / log_softmax / sigmoid) a ref stands for, "" unknown."""
        ref = self.resolve(ref, path)
        kind, _, q = ref.partition(":")
        if depth > 4 or not q:
            return ""
        if kind == "head":
            return q
        if kind == "cls":
            cs = self.cls(q)
            if cs is None:
                return ""
            return cs.forward_head or self.ref_head(cs.forward_ref, cs.path, depth + 1)
        if kind == "func":
            fs = self.function(q, path=path)
            if fs is None:
                return ""
            return fs.returns or self.ref_head(fs.returns_ref, fs.path, depth + 1)
        return ""

    def _propagate(self) -> None:
        """Mode switches made by a helper's helper: ``validate(model)`` calls
        ``predict(model)``, which calls ``model.eval()``, so ``validate`` switches the model its
        caller passes too (receivers mapped through parameter positions, three levels)."""
        switching = {  # functions that switch the mode of one of their parameters
            k
            for k, fss in self.funcs.items()
            if any(
                r.split(".", 1)[0] in f.params and r.split(".", 1)[0] != "self"
                for f in fss
                for r in (*f.sets_eval, *f.sets_train)
            )
        }
        for _ in range(3):
            changed = False
            for m in self.modules:
                for site in m.calls:
                    if site.caller == "<module>" or not site.args:
                        continue
                    if site.q.rsplit(".", 1)[-1] not in switching:
                        continue
                    callee = self.function(site.q, path=site.path)
                    caller = self.function(site.caller, path=site.path)
                    if callee is None or caller is None or callee is caller:
                        continue
                    for attr in ("sets_eval", "sets_train"):
                        for recv in getattr(callee, attr):
                            head, _, rest = recv.partition(".")
                            if head not in callee.params:
                                continue
                            i = callee.params.index(head)
                            arg = site.args[i] if i < len(site.args) else ""
                            if not arg or arg.split(".", 1)[0] not in caller.params:
                                continue
                            mapped = arg + ("." + rest if rest else "")
                            if mapped not in getattr(caller, attr):
                                getattr(caller, attr).append(mapped)
                                switching.add(caller.name.rsplit(".", 1)[-1])
                                changed = True
            if not changed:
                break

    def backward_names(self) -> tuple[str, ...]:
        """Names of the checked functions that run a backward pass (``train_step``)."""
        if self._backward_names is None:
            self._backward_names = tuple(
                sorted({k.rsplit(".", 1)[-1] for k, fs in self.funcs_items() if fs.backward})
            )
        return self._backward_names

    def funcs_items(self):
        for m in self.modules:
            yield from m.functions.items()

    def _targets(self, origin: str, own: set[str], level: int = 0, importer: str = "") -> list[str]:
        """Paths of the checked file an import origin (``pkg.mod.name``) resolves to (a
        checked file answers to every suffix of its dotted path). ``level``: the dots of a
        relative import, resolved from ``importer``'s package where that is known. An absolute
        import of the standard library or a known library (``import os``, ``import torch``)
        reaches a checked file only by that file's full name, or in the importer's own folder
        when that folder is not a package (a script's folder comes first on ``sys.path``): a
        checked ``torch/_dynamo/polyfills/os.py`` is not what ``import os`` loads."""
        key = (origin, level, importer)
        hit = self._target_memo.get(key)
        if hit is None:
            hit = self._target_memo[key] = self._resolve_import(origin, level, importer)
        name, paths = hit
        return [] if name in own else paths

    def _resolve_import(self, origin: str, level: int, importer: str) -> tuple[str, list[str]]:
        """(the dotted name matched, the checked files answering to it) for ``_targets``."""
        if level:
            hit = self._relative_target(origin, level, importer)
            if hit is not None:
                return "", hit
        parts = origin.split(".")
        if not level and parts[0] in EXTERNAL_TOPS:
            sibling_ok = bool(importer) and os.path.dirname(importer) not in self._package_dirs
            for i in range(len(parts), 0, -1):
                name = ".".join(parts[:i])
                hit = self._by_full.get(name)
                if not hit and sibling_ok and name in self._by_name:
                    hit = self._script_sibling(name, importer)
                if hit:
                    return name, hit
            return "", []
        for i in range(len(parts), 0, -1):
            name = ".".join(parts[:i])
            hit = self._by_name.get(name)
            if hit:
                return name, hit
        return "", []

    def _relative_target(self, origin: str, level: int, importer: str) -> list[str] | None:
        """``from ..x import y`` in ``a/b/c.py`` -> the checked ``a/x.py`` (or ``a/x/y.py``);
        None when ``importer``'s package is not known (no checked ``__init__.py`` there)."""
        if os.path.dirname(importer) not in self._package_dirs:
            return None
        pkg = self._importable.get(importer, "").split(".")
        if os.path.basename(importer) != "__init__.py":
            pkg = pkg[:-1]
        if level - 1 > len(pkg) or not pkg:
            return None
        base = pkg[: len(pkg) - (level - 1)]
        parts = base + origin.split(".")
        for i in range(len(parts), len(base), -1):
            hit = self._by_full.get(".".join(parts[:i]))
            if hit:
                return [p for p in hit if p != importer]
        return []

    def _script_sibling(self, name: str, importer: str) -> list[str]:
        """Checked files answering to ``name`` in ``importer``'s folder, when that folder is
        not a package (no checked ``__init__.py``)."""
        hits = self._by_name.get(name)
        if not hits or not importer:
            return []
        folder = os.path.dirname(importer)
        if folder in self._package_dirs:
            return []
        return [p for p in hits if os.path.dirname(p) == folder]

    def neighbours(self, mod) -> list[ModuleSummary]:
        """``mod``'s own summary, the checked files it imports and those that import it."""
        if self._importers is None:
            self._importers = {}
            for m in self.modules:
                own = set(m.names)
                rel = m.relative_imports
                for origin in m.imports:
                    for t in self._targets(origin, own, rel.get(origin, 0), m.path):
                        self._importers.setdefault(t, []).append(m.path)
        paths = [mod.path] + [m.path for m in self.imported_modules(mod)]
        paths += self._importers.get(mod.path, [])
        return [self._by_path[p] for p in dict.fromkeys(paths) if p in self._by_path]

    def imported_modules(self, mod) -> list[ModuleSummary]:
        """The checked files ``mod`` imports (by the dotted names its imports resolve to)."""
        own = set(self._mod_names.get(mod.path, []))
        paths: dict[str, None] = {}
        for origin in set(mod.imports.values()):
            for t in self._targets(origin, own, mod.relative_imports.get(origin, 0), mod.path):
                paths[t] = None
        return [self._by_path[p] for p in paths if p in self._by_path]

    def reaches(self, mod) -> bool:
        """``mod`` imports something from another checked file (its facts then depend on them)."""
        own = set(self._mod_names.get(mod.path, []))
        for origin in mod.imports.values():
            parts = origin.split(".")
            level = mod.relative_imports.get(origin, 0)
            if level or parts[0] in EXTERNAL_TOPS:
                if self._targets(origin, own, level, mod.path):  # see _targets
                    return True
                continue
            for i in range(len(parts), 0, -1):
                name = ".".join(parts[:i])
                if name in self.all_names and name not in own:
                    return True
        return False

    def _match(self, q: str, module: str, name: str) -> bool:
        """``q`` (``utils.evaluate`` or bare ``evaluate``) names ``module.name``."""
        if "." not in q:
            return q == name
        qmod = q.rsplit(".", 1)[0]
        return module == qmod or module.endswith("." + qmod) or qmod.endswith("." + module)

    def function(self, q: str, exclude_path: str = "", path: str = "") -> FuncSummary | None:
        """The summary of the function a call resolving to ``q`` reaches (None if ambiguous or
        not among the checked files). A bare name is a function of file ``path`` itself (an
        imported one resolves to a dotted name)."""
        last = q.rsplit(".", 1)[-1]
        cands = [f for f in self.funcs.get(last, []) if f.path != exclude_path]
        if "." not in q:
            cands = [f for f in cands if f.path == path]
        if "." in q:
            cands = [
                f
                for f in cands
                if "." not in f.name  # a module function, not a method
                and any(self._match(q, n, last) for n in self._mod_names.get(f.path, [f.module]))
            ]
        else:
            cands = [f for f in cands if "." not in f.name]
            if len(cands) != 1:
                return None
        return cands[0] if len(cands) == 1 else None

    def cls(self, q: str, exclude_path: str = "") -> ClassSummary | None:
        last = q.rsplit(".", 1)[-1]
        cands = [c for c in self.classes.get(last, []) if c.path != exclude_path]
        if "." in q:
            cands = [
                c
                for c in cands
                if any(self._match(q, n, last) for n in self._mod_names.get(c.path, [c.module]))
            ]
        return cands[0] if len(cands) == 1 else None

    def all_callers(self, path: str, func: str, pred, depth: int = 3) -> bool:
        """``func`` of ``path`` is called somewhere and at every call ``pred(site)`` holds, or
        holds for every call of the calling function (up to ``depth`` levels of callers)."""
        sites = self.callers(path, func)
        if not sites:
            return False
        for s in sites:
            if pred(s):
                continue
            if depth <= 1 or s.caller in ("<module>", func):
                return False
            if not self.all_callers(s.path, s.caller, pred, depth - 1):
                return False
        return True

    def eval_before(self, site: CallSite) -> bool:
        """A model was switched to eval() before ``site``: directly, or by a function called
        earlier that returns the model it switched (``model = setup_model()``)."""
        if site.eval_before:
            return True
        for q in site.prior:
            fs = self.function(q, path=site.path)
            if fs is not None and fs.returns_eval:
                return True
        return False

    def callers(self, path: str, func: str) -> list[CallSite]:
        """Call sites anywhere in the program that reach function ``func`` of file ``path``."""
        names = self._mod_names.get(path, [])
        out = []
        for c in self.calls_by_name.get(func, []):
            if "." not in c.q or c.q.startswith("self."):
                if c.path == path:
                    out.append(c)
                continue
            if any(self._match(c.q, n, func) for n in names):
                out.append(c)
        return out


# ----------------------------------------------------------------------------- phase 1


def summarize(mod, names: list[str]) -> ModuleSummary:  # mod: ModuleFacts
    """Phase 1 for one parsed file."""
    from toolkit.static.rules._common import is_scheduler

    out = ModuleSummary(mod.path, names)
    from toolkit.static.rules.names import is_run_file

    out.sets_epoch = bool(mod.calls_attr("set_epoch"))
    out.causal_lm = bool(mod.names_with("causal_lm"))
    out.trains = bool(mod.calls_attr("backward"))
    out.grad_ctx = out.trains or bool(mod.calls_q("no_grad", "inference_mode"))
    out.bn1d = out.trains and mod.spells("BatchNorm1d")
    if out.trains:
        out.train_iters = tuple(sorted({name for name, _loop, _outer in training_iters(mod)}))
    out.uses_scaler = bool(mod.calls_q("GradScaler", "ShardedGradScaler"))
    out.saves = any(mod.resolve(c.func) == "torch.save" for c in mod.calls_q("save"))
    out.is_run = is_run_file(mod)
    out.imports = sorted(set(mod.imports.values()))
    out.relative_imports = dict(mod.relative_imports)
    out.size = mod.size
    out.distributed = bool(
        mod.names_with("ddp") or mod.calls_q("init_process_group", "DistributedDataParallel")
    )
    module = names[0] if names else Path(mod.path).stem
    has_heads = mod.spells("softmax", "sigmoid", "Softmax", "Sigmoid")
    has_bn = mod.spells("BatchNorm1d")
    for cname, cls in mod.module_classes.items():
        from toolkit.static.rules.losses import _class_head

        bn = has_bn and any(
            mod.resolve(c.func).rsplit(".", 1)[-1] == "BatchNorm1d" for c in calls_in(cls)
        )
        head = _class_head(mod, cls, 0) if has_heads else ""
        out.classes[cname] = ClassSummary(
            cname, module, mod.path, head, bn, mode_dependent(mod, cls)
        )
        if not head:
            out.classes[cname].forward_ref = _forward_ref(mod, cls)
    heads = mod.spells("softmax", "sigmoid", "Softmax", "Sigmoid", "logits", "from_pretrained")
    loader_calls = mod.calls_q("DataLoader")
    funcs = []
    for node in [*mod.by_type.get(ast.FunctionDef, []), *mod.by_type.get(ast.AsyncFunctionDef, [])]:
        cls = getattr(node, "_lc_class", "")
        key = f"{cls}.{node.name}" if cls else node.name  # type: ignore[attr-defined]
        fs = FuncSummary(key, module, mod.path, node.lineno)  # type: ignore[attr-defined]
        a = node.args  # type: ignore[attr-defined]
        fs.params = [x.arg for x in [*a.posonlyargs, *a.args]]
        fs.no_grad = any(
            mod._ctx_of(d) in ("no_grad", "inference_mode")
            for d in node.decorator_list  # type: ignore[attr-defined]
        )
        funcs.append((node.lineno, node.end_lineno or node.lineno, node, fs))  # type: ignore[attr-defined]
        out.functions[key] = fs
    funcs.sort(key=lambda t: t[0])

    at: list[FuncSummary | None] = [None] * (len(mod.lines) + 2)
    for lo, hi, _n, fs in funcs:  # outer functions first: inner ones overwrite their lines
        at[lo : hi + 1] = [fs] * (min(hi, len(at) - 1) - lo + 1)

    def owner(line: int) -> FuncSummary | None:
        """The innermost function containing ``line``."""
        return at[line] if 0 <= line < len(at) else None

    for c in mod.calls_attr("backward"):
        fs = owner(c.lineno)
        if fs is not None and dotted(c.func.value) not in ("ctx", "self", "super()"):  # type: ignore[attr-defined]
            fs.backward = True
    for attr in ("zero_grad", "eval", "train", "step", "set_epoch"):
        for c in mod.calls_attr(attr):
            fs = owner(c.lineno)
            if fs is None:
                continue
            recv = dotted(c.func.value)  # type: ignore[attr-defined]
            if attr == "zero_grad":
                fs.clears_grads.append(recv)
            elif attr == "eval" and not c.args:
                if mod.is_model(recv) or recv.split(".")[0] in fs.params:
                    fs.sets_eval.append(recv)
            elif (
                attr == "train"
                and recv
                and not (
                    c.args and isinstance(c.args[0], ast.Constant) and c.args[0].value is False
                )
            ):
                if mod.is_model(recv) or recv.split(".")[0] in fs.params:
                    fs.sets_train.append(recv)
            elif attr == "step" and recv and is_scheduler(mod, recv):
                fs.steps_scheduler = True
            elif attr == "set_epoch":
                fs.sets_epoch = True
    for st in mod.grad_none:
        fs = owner(st.lineno)
        if fs is not None:
            fs.clears_grads.append(dotted(st.targets[0]))
    optim = mod.spells("optim", "Adam", "SGD", "Loss", "partial", "entropy")
    returns = None
    for _lo, _hi, node, fs in funcs:
        if heads or fs.sets_eval or optim:
            if returns is None:
                returns = _Returns(mod)
            _returns(mod, node, fs, returns)
        if loader_calls:
            _loaders(node, loader_calls, fs, mod.lines)
    _call_sites(mod, out, owner)
    # A method is looked up by other files only as a constructor (``Cls.__init__``'s
    # parameters), for its backward pass or for a pretrained model it returns
    # (Program.function resolves calls to module functions): the other methods' summaries
    # are left out of what processes exchange (a third of the bytes on torch/_dynamo).
    out.functions = {
        k: fs
        for k, fs in out.functions.items()
        if "." not in k or k.endswith(".__init__") or fs.backward or fs.returns_pretrained
    }
    return out


class _Returns:
    """The file's ``return <value>`` statements, found by line range (in walk order)."""

    def __init__(self, mod) -> None:
        from toolkit.static.engine import OPTIMIZER_NAMES
        from toolkit.static.rules.losses import FUNCTIONAL

        # what the file spells decides which facts a return can carry (a name a return
        # resolves to is written at the call or in an import)
        self.optim = mod.mentions(*OPTIMIZER_NAMES)
        self.loss = mod.mentions(*FUNCTIONAL, *FUNCTIONAL.values())
        self.pretrained = mod.mentions("from_pretrained")
        # provenance() finds a head in a file that spells softmax/sigmoid (or a class/call of
        # them) or "logit" in some case, or through another file's summary (not in phase 1)
        self.heads = (
            mod.program is not None
            or mod.mentions("oftmax", "igmoid")
            or not mod.source.isascii()
            or bool(LOGIT_RE.search(mod.source))
        )
        self.values = [n.value for n in mod.by_type.get(ast.Return, []) if n.value is not None]
        lines = [n.lineno for n in mod.by_type.get(ast.Return, []) if n.value is not None]
        self.by_line = sorted(range(len(lines)), key=lines.__getitem__)
        self.lines = [lines[i] for i in self.by_line]

    def within(self, lo: int, hi: int) -> list[ast.expr]:
        i, j = bisect_left(self.lines, lo), bisect_right(self.lines, hi)
        return [self.values[k] for k in sorted(self.by_line[i:j])]


def _returns(mod, node: ast.AST, fs: FuncSummary, returns: _Returns) -> None:
    from toolkit.static.rules.losses import provenance

    lo, hi = node.lineno, getattr(node, "end_lineno", node.lineno)  # type: ignore[attr-defined]
    rets = returns.within(lo, hi)
    if not rets:
        return
    from toolkit.static.engine import OPTIMIZER_NAMES

    for r in rets if returns.optim else ():
        v = strip_moves(r)
        if isinstance(v, ast.Name):
            vals = mod.assigns.get(v.id, [])
            v = vals[-1][0] if vals else v
        if isinstance(v, ast.Call) and not isinstance(v.func, ast.Call):
            q = mod.resolve(v.func)
            if q.rsplit(".", 1)[-1] in OPTIMIZER_NAMES and (
                q.startswith(("torch.optim", "bnb", "bitsandbytes", "transformers")) or "." not in q
            ):
                fs.returns_optimizer = True
    from toolkit.static.rules.losses import loss_kind_of

    if len(rets) == 1 and isinstance(rets[0], ast.Tuple):
        fs.returns_elems = tuple(arg_ref(mod, el) for el in rets[0].elts)
    kinds = {loss_kind_of(mod, r) for r in rets} if returns.loss else {""}
    if len(kinds) == 1:
        fs.returns_loss = kinds.pop()
    evald = set(fs.sets_eval)
    fs.returns_eval = any(isinstance(r, ast.Name) and r.id in evald for r in rets)
    heads = [provenance(mod, r) & set(HEADS) if returns.heads else set() for r in rets]
    if all(len(h) == 1 for h in heads) and len(set.union(*heads)) == 1:
        fs.returns = next(iter(heads[0]))
    elif len(rets) == 1:
        ref = arg_ref(mod, rets[0])
        fs.returns_ref = ref if ref.startswith(("cls:", "func:")) else ""
    for r in rets if returns.pretrained else ():
        elts = r.elts if isinstance(r, ast.Tuple) else [r]
        for i, el in enumerate(elts):
            if _is_pretrained(mod, el):
                fs.returns_pretrained = True
                fs.pretrained_at = i if isinstance(r, ast.Tuple) else -1


def arg_ref(mod, a: ast.AST) -> str:
    """What an argument (or returned value) is, for rules in other files: ``head:softmax`` (a
    model whose output ends with softmax, known here), ``loss:CrossEntropyLoss`` (a loss
    object), ``cls:<q>`` (an instance of class ``q``), ``func:<q>`` (what function ``q``
    returns); "" when unknown. Follows ``.to()``/``.cuda()`` and one local assignment."""
    if isinstance(a, ast.Name):
        if a.id not in mod.assigns:  # a parameter or global: only a tuple element is known
            return _unpacked(mod).get(a.id, "")
        memo = mod._cache.setdefault("arg_ref", {})
        if a.id not in memo:
            memo[a.id] = _name_ref(mod, a)
        return memo[a.id]
    return _value_ref(mod, a)


def _name_ref(mod, a: ast.Name) -> str:
    """``arg_ref`` of a name assigned in this file (memoized per name by the caller)."""
    from toolkit.static.rules.losses import _model_head

    head = _model_head(mod, a.id, 0)
    if head:
        return "head:" + head
    for r in mod.kinds.get(a.id, ()):
        if r.startswith("loss_fn:"):
            return "loss:" + r.split(":", 1)[1]
    sched = _sched_text(mod, a.id)
    if sched:
        return "sched:" + sched
    vals = mod.assigns.get(a.id, [])
    return _value_ref(mod, vals[0][0]) if len(vals) == 1 else ""


def _value_ref(mod, a: ast.AST) -> str:
    from toolkit.static.rules.losses import FUNCTIONAL

    if isinstance(a, ast.Lambda) and isinstance(a.body, ast.Call):
        from toolkit.static.engine import OPTIMIZER_NAMES

        if mod.resolve(a.body.func).rsplit(".", 1)[-1] in OPTIMIZER_NAMES:
            return "optim:"  # `lambda params: torch.optim.Adam(params, ...)`
    v = strip_moves(a)
    if not isinstance(v, ast.Call) or isinstance(v.func, ast.Call):
        return ""
    callee = dotted(v.func)
    if mod.is_model(callee) and not callee.rsplit(".", 1)[-1][:1].isupper():
        return ""  # a model's forward output, not a constructor or helper result
    q = mod.resolve(v.func)
    last = q.rsplit(".", 1)[-1]
    if not q or "." in q.split("(")[0] and q.split(".")[0] in ("self",):
        return ""
    if last in FUNCTIONAL.values():
        return "loss:" + last
    if last in mod.module_classes:
        from toolkit.static.rules.losses import _class_head

        head = _class_head(mod, mod.module_classes[last], 0)
        return "head:" + head if head else "cls:" + q
    if last == "Sequential":
        from toolkit.static.rules.losses import seq_head

        head = seq_head(mod, v)
        return "head:" + head if head else ""
    return ("cls:" if last[:1].isupper() else "func:") + q


def _unpacked(mod) -> dict[str, str]:
    """name -> ``func:<q>#i`` for ``a, name = helper(...)`` statements (first one wins)."""
    from toolkit.static.rules._common import tuple_bindings

    out = mod._cache.get("unpacked")
    if out is None:
        out = mod._cache["unpacked"] = {}
        for name, sites in tuple_bindings(mod).items():
            call, i = sites[0]
            q = "" if isinstance(call.func, ast.Call) else mod.resolve(call.func)
            if q:
                out[name] = f"func:{q}#{i}"
    return out


def _forward_ref(mod, cls: ast.ClassDef) -> str:
    """``cls.forward`` returns ``self.sub(...)`` whose class is defined in another file."""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "forward":
            rets = [
                n.value for n in ast.walk(item) if isinstance(n, ast.Return) and n.value is not None
            ]
            if len(rets) != 1 or not isinstance(rets[0], ast.Call):
                return ""
            callee = dotted(rets[0].func)
            vals = mod.assigns.get(callee, []) if callee.startswith("self.") else []
            if len(vals) == 1:
                ref = arg_ref(mod, vals[0][0])
                return ref if ref.startswith("cls:") else ""
    return ""


def _is_pretrained(mod, v: ast.AST) -> bool:
    if isinstance(v, ast.Name):
        vals = mod.assigns.get(v.id, [])
        v = vals[-1][0] if vals else v
    v = strip_moves(v)
    if isinstance(v, ast.Call) and mod.resolve(v.func).endswith("from_pretrained"):
        owner = mod.resolve(v.func).rsplit(".", 2)
        return len(owner) >= 2 and not any(
            k in owner[-2] for k in ("Tokenizer", "Config", "Processor")
        )
    return False


TRAIN_LINE_RE = re.compile(r"^\s*\w*train\w*\s*=", re.I)


def _loaders(node: ast.AST, calls: list[ast.Call], fs: FuncSummary, lines: list[str]) -> None:
    lo, hi = node.lineno, getattr(node, "end_lineno", node.lineno)  # type: ignore[attr-defined]
    for c in calls:
        if lo <= c.lineno <= hi:
            has = any(k.arg in ("sampler", "batch_sampler") or k.arg is None for k in c.keywords)
            fs.builds_loader = "sampler" if has or fs.builds_loader == "sampler" else "plain"
            fs.loader_line = fs.loader_line or c.lineno
            drop = any(k.arg in ("drop_last", "batch_sampler") or k.arg is None for k in c.keywords)
            ds = dotted(c.args[0]) if c.args else ""
            if (
                not drop
                and len(c.args) < 9
                and (TRAIN_LINE_RE.search(lines[c.lineno - 1]) or "train" in ds.lower())
            ):
                fs.train_loader_keeps_last = fs.train_loader_keeps_last or c.lineno
    if fs.builds_loader == "sampler" and any(
        "DistributedSampler(" in ln and "shuffle=False" not in ln for ln in lines[lo - 1 : hi]
    ):
        fs.dist_sampler = True


_LINE_COL = itemgetter(0, 1)


def _call_sites(mod, out: ModuleSummary, owner) -> None:
    """Calls that may reach a function of a checked file, with their context read from line
    ranges (no scopes needed): inside a ``with no_grad()`` / ``inference_mode()`` block, after
    an ``.eval()`` earlier in the same function, under an ``if`` on the rank."""
    no_grad: list[tuple[int, int]] = []
    for w in mod.nodes(ast.With, ast.AsyncWith):
        if any(mod._ctx_of(i.context_expr) in ("no_grad", "inference_mode") for i in w.items):
            no_grad.append((w.body[0].lineno, w.end_lineno or w.lineno))
    ranked: list[tuple[int, int]] = []
    src = mod.source
    # a rank condition spells one of RANK_WORDS (an ASCII file with none of them has none;
    # only a string constant written with escapes could spell one otherwise)
    if not src.isascii():
        ifs = mod.nodes(ast.If)
    elif any(w in src.lower() for w in RANK_WORDS):
        lines = mod.lines
        ifs = []
        for node in mod.nodes(ast.If):
            t = node.test
            lo, hi = t.lineno, t.end_lineno or t.lineno
            seg = (
                lines[lo - 1][t.col_offset : t.end_col_offset]
                if lo == hi
                else " ".join(lines[lo - 1 : hi])
            )
            low = seg.lower()
            if any(w in low for w in RANK_WORDS):
                ifs.append(node)
    else:
        ifs = []
    for node in ifs:
        if rank_test(cond_text(node.test)):
            ranked.append((node.body[0].lineno, node.body[-1].end_lineno or node.lineno))
    targets: dict[int, str] = {}  # call -> the name its result is assigned to
    for st in mod.nodes(ast.Assign):
        if isinstance(st.value, ast.Call):
            t = st.targets[0]
            targets[id(st.value)] = (
                dotted(t) if not isinstance(t, ast.Tuple) else ",".join(dotted(e) for e in t.elts)
            )
    loops = []  # line ranges of loops and comprehensions over a data loader (per batch)
    for n in mod.nodes(ast.For, ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp):
        it = n.iter if isinstance(n, ast.For) else n.generators[0].iter
        if mod._loaderish(it):
            lo = n.body[0].lineno if isinstance(n, ast.For) else n.lineno
            loops.append((lo, n.end_lineno or n.lineno))
    evals: dict[str, list[int]] = {}
    for c in mod.calls_attr("eval"):
        if not c.args:
            fs = owner(c.lineno)
            evals.setdefault(fs.name if fs else "<module>", []).append(c.lineno)
    prior: dict[str, list[str]] = {}
    sched_names = mod.names_with("scheduler")
    size = max([hi for _lo, hi in no_grad + ranked] + [0]) + 2
    in_no_grad, in_ranked = bytearray(size), bytearray(size)  # per line: inside such a block
    for flags, spans in ((in_no_grad, no_grad), (in_ranked, ranked)):
        for lo, hi in spans:
            if hi >= lo:
                flags[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    loop_size = max([hi for _lo, hi in loops] + [0]) + 2
    in_loop = bytearray(loop_size)  # per line: inside a loop over a data loader
    for lo, hi in loops:
        if hi >= lo:
            in_loop[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    imports = mod.imports
    kept = []
    resolve = mod.resolve
    name_t, attr_t = ast.Name, ast.Attribute
    for c in mod.all_calls:
        f = c.func
        tf = type(f)
        if tf is name_t:
            if f.id not in imports and (f.id in BUILTINS or f.id in NOT_CHECKED):
                continue  # a builtin (or a library's name): never a function checked here
        elif tf is attr_t:
            v = f.value
            if type(v) is name_t and v.id not in imports and v.id != "self":
                continue  # a method call on an object: not resolvable by name
        else:
            continue
        q = resolve(f)
        if not q:
            continue
        top = q.split(".", 1)[0]
        if top in NOT_CHECKED or (top == q and top in BUILTINS):
            continue  # a library or builtin callee: never a function of the checked files
        if tf is ast.Attribute and top not in imports:
            if not (type(f.value) is ast.Name and f.value.id == "self"):
                continue  # a method call on an object: not resolvable by name
        kept.append((c.lineno, c.col_offset, q, c))
    kept.sort(key=_LINE_COL)
    for line, _col, q, c in kept:
        fs = owner(line)
        q = intern(q)  # one object per name: the summaries pickle small between processes
        caller = intern(fs.name.rsplit(".", 1)[-1]) if fs else "<module>"
        key = fs.name if fs else "<module>"
        before = prior.setdefault(key, [])
        scheds = ()
        if c.args and sched_names:
            scheds = tuple(
                (i, _sched_text(mod, dotted(a)))
                for i, a in enumerate(c.args)
                if dotted(a) in sched_names and _sched_text(mod, dotted(a))
            )
        out.calls.append(
            CallSite(
                q,
                mod.path,
                line,
                line < size and bool(in_no_grad[line]),
                any(x < line for x in evals.get(key, ())),
                line < size and bool(in_ranked[line]),
                caller,
                tuple(before[-12:]),
                scheds,
                tuple(dotted(a) for a in c.args),
                tuple(
                    arg_ref(mod, a) if isinstance(a, ast.Name | ast.Call) else "" for a in c.args
                ),
                line < loop_size and bool(in_loop[line]),
                targets.get(id(c), ""),
            )
        )
        before.append(q)


def _sched_text(mod, name: str) -> str:
    from toolkit.static.rules.training import _epoch_scheduler

    found = _epoch_scheduler(mod, name)
    if found is None:
        return ""
    cls, period = found
    return f"{cls}({period})" if period else cls


MODE_LAYERS = ("Dropout", "BatchNorm", "SyncBatchNorm", "InstanceNorm", "dropout", "AlphaDropout")


def mode_dependent(mod, node: ast.AST) -> bool:
    """``node`` (a class or a Sequential call) builds something train()/eval() changes: dropout,
    batch/instance norm, an RNN with dropout, a submodule whose class is not known here. A
    class that builds no layer at all is not known to be mode-free (True)."""
    layers = 0
    for c in calls_in(node):  # the answer does not depend on the order
        q = mod.resolve(c.func) if not isinstance(c.func, ast.Call) else ""
        last = q.rsplit(".", 1)[-1]
        if last[:1].isupper():
            layers += 1
        if any(k in last for k in MODE_LAYERS):
            return True
        if last in ("LSTM", "GRU", "RNN", "Transformer", "TransformerEncoderLayer",
                    "TransformerDecoderLayer", "MultiheadAttention"):  # fmt: skip
            return True  # dropout by argument or default
        if any(k.arg == "dropout" or (k.arg or "").endswith("dropout") for k in c.keywords):
            return True
        if (
            last[:1].isupper()
            and "." not in q
            and last not in mod.module_classes
            and (
                last
                not in (
                    "Linear",
                    "Conv1d",
                    "Conv2d",
                    "Conv3d",
                    "ReLU",
                    "Sequential",
                    "Embedding",
                    "LSTMCell",
                    "GRUCell",
                    "Tanh",
                    "Sigmoid",
                    "PixelShuffle",
                    "ConvTranspose2d",
                    "MaxPool2d",
                    "AvgPool2d",
                    "Flatten",
                    "LayerNorm",
                    "GELU",
                    "SiLU",
                    "Softmax",
                    "Identity",
                    "ModuleList",
                    "ModuleDict",
                    "Parameter",
                    "EmbeddingBag",
                )  # fmt: skip
            )
        ):
            return True  # a module of unknown make-up
    return layers == 0


def loop_iterable(loop: ast.For) -> str:
    """The name a ``for`` loop iterates: ``loader`` in ``for b in enumerate(tqdm(loader))``."""
    it = loop.iter
    while (
        isinstance(it, ast.Call)
        and it.args
        and dotted(it.func).rsplit(".", 1)[-1]
        in (
            "enumerate",
            "tqdm",
            "iter",
            "zip",
        )
    ):
        it = it.args[0]
    return dotted(it)


def training_iters(mod):  # mod: ModuleFacts
    """(iterated name, the ``for`` loop, the outermost loop around it in its function) for
    each ``for`` loop of the file whose body calls ``.backward()``."""
    from toolkit.static.rules._common import enclosing_function

    bw = sorted(c.lineno for c in mod.calls_attr("backward"))
    if not bw:
        return []
    loops = sorted(
        [*mod.nodes(ast.For), *mod.nodes(ast.While), *mod.nodes(ast.AsyncFor)],
        key=lambda x: x.lineno,
    )
    out = []
    outer: dict[int, ast.AST] = {}  # function (id) -> the outermost loop open at this line
    for loop in loops:  # by first line: an enclosing loop comes before the loops inside it
        lo, hi = loop.lineno, loop.end_lineno or loop.lineno
        key = id(enclosing_function(mod, lo)[0])
        top = outer.get(key)
        if top is None or lo > (top.end_lineno or top.lineno):
            top = outer[key] = loop
        if not isinstance(loop, ast.For):
            continue
        k = bisect_left(bw, lo)
        if k == len(bw) or bw[k] > hi:
            continue  # no backward() call inside this loop
        name = loop_iterable(loop)
        if name:
            out.append((name, loop, top))
    return out
