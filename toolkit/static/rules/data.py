"""LC5xx: data loading."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, has_star_kwargs, kwarg, strip_moves

TORCH = ("pytorch",)
TRAIN_RE = re.compile(r"train", re.I)
EVAL_RE = re.compile(
    r"(^|_)(val|valid|validation|eval|test|dev)(_|$|loader|set|ds|dataset|data)", re.I
)


def loaders(mod: ModuleFacts):
    """(call, assigned name, dataset text) for each DataLoader(...)."""
    calls = mod.calls_q("DataLoader")
    if not calls:
        return
    targets: dict[int, str] = mod._cache.get("assign_targets")  # type: ignore[assignment]
    if targets is None:
        targets = mod._cache["assign_targets"] = {}
        for name, vals in mod.assigns.items():
            for v, _ in vals:
                targets[id(v)] = name
    for c in calls:
        ds = c.args[0] if c.args else kwarg(c, "dataset")
        yield c, targets.get(id(c), ""), (dotted(ds) if ds is not None else "") or ""


def _is_train_loader(name: str, ds: str) -> bool:
    both = f"{name} {ds}"
    return bool(TRAIN_RE.search(both)) and not EVAL_RE.search(name)


ITERABLE_RE = re.compile(r"(iter|stream|pipe)", re.I)


def _trains_on(mod: ModuleFacts, name: str) -> bool:
    """A ``for ... in name`` loop (or ``enumerate(name)``) whose body runs backward()."""
    for loop in mod.nodes(ast.For):
        it = loop.iter
        if isinstance(it, ast.Call) and dotted(it.func) in ("enumerate", "tqdm") and it.args:
            it = it.args[0]
        if dotted(it) == name and any(
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == "backward"
            for n in ast.walk(loop)
        ):
            return True
    return False


def _iterable_dataset(mod: ModuleFacts, ds: str) -> bool:
    """``ds`` is (by its name, or its class in this file) an iterable-style dataset: a
    ``train_iterator``, a streaming dataset, a datapipe, an ``IterableDataset`` subclass."""
    if not ds:
        return False
    if ITERABLE_RE.search(ds.rsplit(".", 1)[-1]):
        return True
    for v, _st in mod.assigns.get(ds, []):
        if isinstance(v, ast.Call):
            if mod.value_of(kwarg(v, "streaming"), None) is True:
                return True
            name = dotted(v.func)
            if any(
                c.name == name and any("IterableDataset" in dotted(b) for b in c.bases)
                for c in mod.nodes(ast.ClassDef)
            ):
                return True
    return False


def _uses_cuda(mod: ModuleFacts) -> bool:
    if mod.calls_attr("cuda"):
        return True
    if "cached_uses_cuda" not in mod._cache:
        mod._cache["cached_uses_cuda"] = any(
            isinstance(n.value, str) and n.value.startswith("cuda") for n in mod.nodes(ast.Constant)
        )
    return mod._cache["cached_uses_cuda"]


def _distributed(mod: ModuleFacts) -> bool:
    return bool(
        mod.names_with("ddp") or mod.calls_q("init_process_group", "DistributedDataParallel")
    )


@rule(
    "LC501",
    "train-loader-not-shuffled",
    "warning",
    TORCH,
    """Flags a training ``DataLoader`` (its variable or dataset is named ``train...``) that sets
    none of ``shuffle``, ``sampler`` or ``batch_sampler`` (an explicit ``shuffle=False`` is taken
    as a decision). Batches arrive in dataset order
    (often sorted by class or source), so SGD sees correlated batches and the model learns the
    order. Iterable datasets (named ``...iter...``/``stream``/``pipe``, ``streaming=True``, an
    ``IterableDataset`` subclass) are skipped: the loader cannot shuffle them (``shuffle=True``
    raises), they shuffle upstream.""",
    "pass shuffle=True (or a shuffling sampler such as DistributedSampler)",
)
def train_not_shuffled(mod: ModuleFacts):
    for c, name, ds in loaders(mod):
        if has_star_kwargs(c) or not _is_train_loader(name, ds):
            continue
        if _iterable_dataset(mod, ds):
            continue  # DataLoader(shuffle=True) raises on an IterableDataset: it shuffles upstream
        if any(kwarg(c, k) is not None for k in ("sampler", "batch_sampler")):
            continue
        if len(c.args) >= 3:  # positional shuffle
            continue
        if kwarg(c, "shuffle") is not None:
            continue  # shuffle written out (even False, e.g. a curriculum or sorted batches): a decision
        yield Hit(c, f"training loader '{name or ds}' is not shuffled (shuffle defaults to False)")


@rule(
    "LC502",
    "shuffle-with-sampler",
    "error",
    TORCH,
    """Flags ``DataLoader(shuffle=True, sampler=...)`` or with ``batch_sampler``. The two are
    mutually exclusive and the DataLoader raises ``ValueError`` at construction; set shuffling
    on the sampler instead (``DistributedSampler(ds, shuffle=True)``).""",
    "drop shuffle=True and let the sampler shuffle",
)
def shuffle_sampler(mod: ModuleFacts):
    for c, name, _ in loaders(mod):
        if mod.value_of(kwarg(c, "shuffle"), None) is True and any(
            kwarg(c, k) is not None and mod.value_of(kwarg(c, k), 0) is not None
            for k in ("sampler", "batch_sampler")
        ):
            yield Hit(
                c,
                f"loader '{name}' sets shuffle=True together with a sampler: DataLoader raises ValueError",
            )


def _builder_sites(mod: ModuleFacts, c: ast.Call):
    """(function name, call sites) when DataLoader ``c`` is built in a function of this file
    that other checked files call."""
    from toolkit.static.rules._common import enclosing_function

    f, key = enclosing_function(mod, c.lineno)
    if f is None or "." in key or mod.program is None:
        return "", []
    return key, [s for s in mod.program.callers(mod.path, key) if s.path != mod.path]


def _train_site(fname: str, site) -> bool:
    """The call site uses the loader for training (by the name it binds, or the builder's)."""
    names = site.target.split(",")
    if any(EVAL_RE.search(n) for n in names) and not any(TRAIN_RE.search(n) for n in names):
        return False
    return bool(TRAIN_RE.search(site.target) or TRAIN_RE.search(fname)) or site.target in (
        "loader",
        "dataloader",
        "dl",
        "data_loader",
    )


@rule(
    "LC503",
    "ddp-without-distributed-sampler",
    "warning",
    ("pytorch", "ddp"),
    """Flags a DDP script (``DistributedDataParallel`` or ``init_process_group``) whose training
    ``DataLoader`` has no sampler. Every rank then iterates the full dataset in the same order:
    N GPUs compute N copies of the same gradient, an epoch takes as long as on one GPU, and the
    effective batch size is not what you configured.""",
    "pass sampler=DistributedSampler(dataset) (and shuffle=False) to the training loader",
)
def ddp_sampler(mod: ModuleFacts):
    if not _distributed(mod) and mod.program is not None:
        # a loader builder called by a DDP script in another file: point at the DataLoader
        for c, name, _ds in loaders(mod):
            if has_star_kwargs(c) or kwarg(c, "sampler") is not None:
                continue
            if kwarg(c, "batch_sampler") is not None or (name and EVAL_RE.search(name)):
                continue
            fname, sites = _builder_sites(mod, c)
            modules = {m.path: m for m in mod.program.modules}
            hit = [s for s in sites if modules[s.path].distributed and _train_site(fname, s)]
            if hit:
                yield Hit(
                    c,
                    f"{fname}() builds this DataLoader without a DistributedSampler and the DDP script {Path(hit[0].path).name}:{hit[0].line} trains on it: every rank sees the same data",
                )
    if not _distributed(mod) or mod.calls_q("DistributedSampler") or mod.imported("accelerate"):
        return
    for c, name, ds in loaders(mod):
        if has_star_kwargs(c) or not _is_train_loader(name, ds):
            continue
        if kwarg(c, "sampler") is None and kwarg(c, "batch_sampler") is None:
            yield Hit(
                c,
                f"training loader '{name or ds}' has no DistributedSampler under DDP: every rank sees the same data",
            )
    if mod.program is None:
        return
    for name, vals in mod.assigns.items():  # a loader built by a helper in another checked file
        if EVAL_RE.search(name):
            continue
        for v, _ in vals:
            if not isinstance(v, ast.Call) or isinstance(v.func, ast.Call):
                continue
            fs = mod.program.function(mod.resolve(v.func), exclude_path=mod.path)
            if fs is None or fs.builds_loader != "plain":
                continue
            # the training loader: by its name, its builder's name, or a loop that trains on it
            if fs.path in {m.path for m in mod.program.modules}:
                continue  # reported where the loader is built (see above)
            if _is_train_loader(name, "") or TRAIN_RE.search(fs.name) or _trains_on(mod, name):
                yield Hit(
                    v,
                    f"'{name}' comes from {fs.name}() ({Path(fs.path).name}:{fs.loader_line}), which builds a DataLoader without a sampler: under DDP every rank sees the same data",
                    "pass sampler=DistributedSampler(dataset) where the loader is built (or hand a sampler to the helper)",
                )


@rule(
    "LC504",
    "set-epoch-never-called",
    "warning",
    ("pytorch", "ddp"),
    """Flags a ``DistributedSampler`` in a file that never calls ``sampler.set_epoch(epoch)``.
    The sampler seeds its shuffle with the epoch number, so without it every epoch uses the
    same permutation on every rank.""",
    "call sampler.set_epoch(epoch) at the start of every epoch",
)
def set_epoch(mod: ModuleFacts):
    if mod.calls_attr("set_epoch") or (mod.program is not None and mod.program.sets_epoch):
        return  # called here, or in a helper/trainer elsewhere in the checked files
    from toolkit.static.program import training_iters

    builders = mod.program is not None and mod.program.dist_sampler_builders
    iters = training_iters(mod) if builders and mod.calls_attr("backward") else []
    msg = "is created but set_epoch() is never called: every epoch has the same order"
    scoped = None  # this file's training loops, built once for its samplers
    for c in mod.calls_q("DistributedSampler"):
        if mod.value_of(kwarg(c, "shuffle"), True) is False:
            continue
        if scoped is None:
            scoped = _scoped_iters(mod)
        # reported at the epoch loop that trains on its loader (where set_epoch belongs)
        outer = _sampler_loop(mod, c, scoped)
        if outer is not None:
            yield Hit(outer, f"the DistributedSampler of line {c.lineno} {msg}")
        elif not _trained_elsewhere(mod, c):
            yield Hit(c, f"DistributedSampler {msg}")
    for name, _loop, outer in iters:  # a loader built by a helper in another checked file
        fs = _dist_builder(mod, name)
        if fs is not None:
            yield Hit(
                outer,
                f"'{name}' comes from {fs.name}() ({Path(fs.path).name}:{fs.loader_line}), whose DistributedSampler {msg}",
            )
            return


def _scoped_iters(mod: ModuleFacts) -> list:
    """(iterated name, loop, outermost loop of its function) for each ``for`` loop that runs
    a backward pass, same-file helpers included (``for b in loader: self._train_step(b)``)."""
    from toolkit.static.program import loop_iterable
    from toolkit.static.rules._common import backward_events

    out = []
    for sc in mod.bw_scopes:
        for b in backward_events(sc):
            for lid in b.loops:
                loop = sc.loops.get(lid)
                if isinstance(loop, ast.For) and (name := loop_iterable(loop)):
                    out.append((name, loop, sc.loops.get(b.loops[0], loop)))
    return out


def _sampler_loop(mod: ModuleFacts, c: ast.Call, iters) -> ast.AST | None:
    """The outermost loop around a training loop over the DataLoader that sampler ``c`` feeds."""
    names = {
        name
        for name, vals in mod.assigns.items()
        for v, _ in vals
        if v is c or (isinstance(v, ast.IfExp) and c in (v.body, v.orelse))
    }
    feeds = set()
    for ld, lname, _ds in loaders(mod):
        smp = kwarg(ld, "sampler")
        if lname and smp is not None and (smp is c or dotted(smp) in names):
            feeds.add(lname)
    return next((outer for name, _loop, outer in iters if name in feeds), None)


def _dist_builder(mod: ModuleFacts, name: str):
    """The function of another checked file that built ``name`` (``loader = make(...)`` or
    ``loader, sampler = make(...)``) with a shuffling DistributedSampler, or None."""
    from toolkit.static.rules._common import tuple_bindings

    if mod.program is None:
        return None
    calls = [v for v, _ in mod.assigns.get(name, []) if isinstance(v, ast.Call)]
    calls += [c for c, _i in tuple_bindings(mod).get(name, [])]
    for call in calls:
        if isinstance(call.func, ast.Name | ast.Attribute):
            fs = mod.program.function(mod.resolve(call.func), exclude_path=mod.path)
            if fs is not None and fs.dist_sampler:
                return fs
    return None


def _trained_elsewhere(mod: ModuleFacts, c: ast.Call) -> bool:
    """Sampler ``c`` is built in a function that another checked file calls and trains on
    the result of (LC504 is reported at that file's training loop, see _dist_builder)."""
    from toolkit.static.rules._common import enclosing_function

    f, key = enclosing_function(mod, c.lineno)
    if f is None or "." in key or mod.program is None:
        return False
    fs = mod.program.function(key, path=mod.path)
    if fs is None or not fs.dist_sampler:
        return False
    modules = {m.path: m for m in mod.program.modules}
    return any(
        set(site.target.split(",")) & set(modules[site.path].train_iters)
        for site in mod.program.callers(mod.path, key)
        if site.path != mod.path and site.path in modules
    )


@rule(
    "LC505",
    "loader-no-workers-on-gpu",
    "info",
    TORCH,
    """Flags a training ``DataLoader`` without ``num_workers`` (or with 0) in a script that uses
    CUDA. Loading and collation then run in the training process between steps and the GPU
    waits on the CPU.""",
    "pass num_workers=4 (or more; tune to CPU cores) and persistent_workers=True",
)
def no_workers(mod: ModuleFacts):
    if not mod.calls_q("DataLoader") or not _uses_cuda(mod):
        return
    for c, name, ds in loaders(mod):
        if has_star_kwargs(c) or not _is_train_loader(name, ds):
            continue
        nw = kwarg(c, "num_workers")
        if nw is None or mod.value_of(nw, None) == 0:
            yield Hit(
                c,
                f"training loader '{name or ds}' loads data in the main process (num_workers=0) on a GPU run",
            )


@rule(
    "LC506",
    "loader-no-pin-memory-on-gpu",
    "info",
    TORCH,
    """Flags a training ``DataLoader`` without ``pin_memory=True`` in a script that uses CUDA.
    Host-to-device copies from pageable memory are slower and cannot overlap with compute
    (``non_blocking=True`` needs pinned memory).""",
    "pass pin_memory=True and copy with .to(device, non_blocking=True)",
)
def no_pin(mod: ModuleFacts):
    if not mod.calls_q("DataLoader") or not _uses_cuda(mod):
        return
    for c, name, ds in loaders(mod):
        if has_star_kwargs(c) or not _is_train_loader(name, ds):
            continue
        if kwarg(c, "pin_memory") is None:
            yield Hit(c, f"training loader '{name or ds}' does not pin memory on a GPU run")


@rule(
    "LC507",
    "eval-loader-shuffled",
    "info",
    TORCH,
    """Flags a validation/test ``DataLoader`` with ``shuffle=True``. Harmless for averaged
    metrics but makes per-batch logs, saved predictions and order-dependent metrics
    non-reproducible.""",
    "use shuffle=False for evaluation loaders",
)
def eval_shuffled(mod: ModuleFacts):
    for c, name, ds in loaders(mod):
        if (
            EVAL_RE.search(name or ds)
            and not TRAIN_RE.search(name)
            and mod.value_of(kwarg(c, "shuffle"), None) is True
        ):
            yield Hit(c, f"evaluation loader '{name or ds}' is shuffled")


FIT_EVAL_RE = re.compile(
    r"(^|_)(x_?)?(test|val|valid|validation|eval|dev)(_|$|set|data|df|x)", re.I
)


@rule(
    "LC508",
    "preprocessing-fit-on-eval-data",
    "warning",
    ("sklearn", "pytorch"),
    """Flags ``scaler.fit(X_test)`` / ``fit_transform(X_val)`` (any ``fit``-style call whose first
    argument is test or validation data) on a preprocessing object. Statistics of the evaluation
    set leak into preprocessing, so reported metrics are optimistic and do not hold on new
    data. Fit on the training split and only ``transform`` the others.""",
    "fit on the training data only: scaler.fit(X_train); X_test = scaler.transform(X_test)",
)
def fit_on_eval(mod: ModuleFacts):
    for c in mod.calls_attr("fit", "fit_transform"):
        if not c.args:
            continue
        recv = dotted(c.func.value)  # type: ignore[attr-defined]
        if (
            mod.is_model(recv)
            or mod.has(recv, "trainer")
            or re.search(r"model|clf|classifier|regressor|estimator|net|trainer", recv, re.I)
        ):
            continue
        arg = dotted(c.args[0])
        if arg and FIT_EVAL_RE.search(arg.rsplit(".", 1)[-1]) and "train" not in arg.lower():
            yield Hit(c, f"'{recv}.{c.func.attr}({arg})' fits preprocessing on evaluation data")  # type: ignore[attr-defined]


def _batchnorm1d_models(mod: ModuleFacts) -> list[str]:
    """Classes (here or in another checked file) and Sequentials built with BatchNorm1d that
    this file instantiates."""
    out = []
    for name, vals in mod.assigns.items():
        for v, _ in vals:
            inner = strip_moves(v)
            if not isinstance(inner, ast.Call) or isinstance(inner.func, ast.Call):
                continue
            q = mod.resolve(inner.func)
            last = q.rsplit(".", 1)[-1]
            bn = False
            if last in mod.module_classes:
                bn = _has_bn1d(mod, mod.module_classes[last])
            elif mod.program is not None and last[:1].isupper():
                cs = mod.program.cls(q, exclude_path=mod.path)
                bn = cs is not None and cs.batchnorm
            elif last == "Sequential":
                bn = _has_bn1d(mod, inner)
            elif last in mod.functions and q == last:  # `model = mlp(32)`: a builder in this file
                bn = _has_bn1d(mod, mod.functions[last])
            if bn:
                out.append(name)
    return out


def _has_bn1d(mod: ModuleFacts, node: ast.AST) -> bool:
    return any(
        isinstance(c, ast.Call) and mod.resolve(c.func).rsplit(".", 1)[-1] == "BatchNorm1d"
        for c in ast.walk(node)
    )


@rule(
    "LC509",
    "batchnorm-last-batch-of-one",
    "warning",
    TORCH,
    """Flags a training ``DataLoader`` without ``drop_last=True`` feeding a model with
    ``BatchNorm1d`` (defined in this file or another checked file). When the dataset size leaves
    a remainder of 1, the last batch has one sample and BatchNorm1d in training mode raises
    "Expected more than 1 value per channel when training" at the end of an epoch, hours in; a
    remainder of a few samples gives noisy batch statistics.""",
    "pass drop_last=True to the training DataLoader",
)
def batchnorm_last_batch(mod: ModuleFacts):
    if mod.program is not None and not mod.trains:
        # `make_loaders()` here, called by a file that trains a BatchNorm1d model: point at
        # the training DataLoader that keeps its last partial batch
        modules = {m.path: m for m in mod.program.modules}
        for c, name, ds in loaders(mod):
            if has_star_kwargs(c) or kwarg(c, "batch_sampler") is not None:
                continue
            if mod.value_of(kwarg(c, "drop_last"), False) or len(c.args) >= 9:
                continue
            if not _is_train_loader(name, ds):
                continue
            fname, sites = _builder_sites(mod, c)
            hit = [s for s in sites if modules[s.path].bn1d]
            if hit:
                yield Hit(
                    c,
                    f"training loader '{name or ds}' keeps a last partial batch (no drop_last=True) and {Path(hit[0].path).name} trains a model with BatchNorm1d on it ({fname}() called at line {hit[0].line}): a last batch of one sample raises in training mode",
                )
        return
    if not mod.trains or not mod.calls_q("DataLoader"):
        return
    models = _batchnorm1d_models(mod)
    if not models:
        return
    for c, name, ds in loaders(mod):
        if has_star_kwargs(c) or not _is_train_loader(name, ds):
            continue
        if kwarg(c, "batch_sampler") is not None or mod.value_of(kwarg(c, "drop_last"), False):
            continue
        if len(c.args) >= 9:  # positional drop_last
            continue
        yield Hit(
            c,
            f"training loader '{name or ds}' keeps a last partial batch (no drop_last=True) and '{models[0]}' has BatchNorm1d: a last batch of one sample raises in training mode",
        )
