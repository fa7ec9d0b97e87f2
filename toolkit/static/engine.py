"""Parse once, collect facts once, let every rule query them.

Facts per module (:class:`ModuleFacts`):

- ``imports``: local name -> dotted origin (``F`` -> ``torch.nn.functional``), so calls resolve
  to qualified names (``Q`` on each :class:`Event`).
- ``assigns``: target text (``opt``, ``self.model``) -> the values assigned to it, and ``kinds``:
  target -> roles derived from those values (optimizer, scheduler, scaler, model, ddp, loader,
  sampler, loss_fn, tokenizer, device, tensor, softmax, sigmoid, ...). Wrapping keeps the role:
  ``model = DDP(model)`` is both ``model`` and ``ddp``.
- ``scopes``: the module body and every function, each an ordered list of :class:`Event` (one per
  call, plus synthetic events such as ``p.grad = None``) with the loops, ``with`` contexts
  (``no_grad``, ``inference_mode``, ``autocast``) and ``if`` tests around it. A call to a function
  defined in the same module (or ``self.method`` in the same class) is inlined one level: the
  helper's events follow the call, inside the caller's loops and contexts.

Suppression: ``# noqa`` and ``# noqa: CODE[,CODE]`` on the reported line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOQA_RE = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*))?", re.I)
MISSING = object()


@dataclass
class Finding:
    code: str
    name: str
    severity: str
    path: str
    line: int
    col: int
    message: str
    fix: str


@dataclass(slots=True)
class Event:
    """One call (or synthetic action) in execution order within a scope."""

    node: ast.AST
    q: str  # resolved dotted callee ("torch.optim.AdamW", "opt.step"), "" when not a name chain
    attr: str  # last part of the callee ("step"), "" when none
    recv: str  # receiver text for method calls ("opt", "self.model", "scaler.scale()")
    idx: int
    loops: tuple[int, ...]
    ctx: frozenset[str]
    ifs: tuple[ast.expr, ...]
    via: str = ""  # helper function name when inlined
    arms: tuple[tuple[str, int], ...] = ()  # (condition text, 0 body / 1 else) per enclosing if

    @property
    def line(self) -> int:
        return getattr(self.node, "lineno", 1)

    @property
    def text(self) -> str:
        """The code this event stands for, as written: ``opt.zero_grad()``, ``p.grad = None``."""
        if self.q == "<grad=None>":
            return f"{self.recv} = None"
        if isinstance(self.node, ast.Call):
            try:
                full = ast.unparse(self.node)
            except Exception:  # pragma: no cover - unparse of odd trees
                full = ""
            if full and len(full) <= 48:
                return full
            d = dotted(self.node.func) or self.attr
            return f"{d}(...)" if self.node.args or self.node.keywords else f"{d}()"
        return self.attr


def exclusive(a: Event, b: Event) -> bool:
    """``a`` and ``b`` sit in different arms of the same condition: no run executes both."""
    if not a.arms or not b.arms:
        return False
    da = dict(a.arms)
    return any(k in da and da[k] != v for k, v in b.arms)


def on_path(anchor: Event, events: Iterable[Event]) -> list[Event]:
    """The events that can run in the same pass as ``anchor`` (not in the other arm of an if)."""
    return [e for e in events if not exclusive(anchor, e)]


def arm_key(test: ast.expr) -> tuple[str, int]:
    """Condition text and polarity: ``if not amp`` is the else arm of ``if amp``."""
    flip = 0
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, flip = test.operand, 1 - flip
    return cond_text(test), flip


CMP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def cond_text(test: ast.expr) -> str:
    """Cheap canonical text of a condition: ``use_amp``, ``self.rank == 0``; other shapes get a
    key of their own node (equal only to themselves)."""
    d = dotted(test)
    if d:
        return d
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = dotted(test.left), test.comparators[0]
        op = CMP_TEXT.get(type(test.ops[0]))
        if left and op and isinstance(right, ast.Constant):
            return f"{left} {op} {right.value!r}"
    if isinstance(test, ast.Call):
        f = dotted(test.func)
        if f and not test.args and not test.keywords:
            return f + "()"
    if isinstance(test, ast.BoolOp):
        op = " and " if isinstance(test.op, ast.And) else " or "
        return "(" + op.join(cond_text(v) for v in test.values) + ")"
    return f"<{id(test)}>"


@dataclass
class Scope:
    name: str
    node: ast.AST | None
    events: list[Event] = field(default_factory=list)
    loops: dict[int, ast.AST] = field(default_factory=dict)  # loop id -> For/While node
    cls: str = ""

    def calls(self, attr: str | None = None, q_end: str | None = None) -> list[Event]:
        out = []
        for e in self.events:
            if attr is not None and e.attr != attr:
                continue
            if q_end is not None and not (e.q == q_end or e.q.endswith("." + q_end)):
                continue
            out.append(e)
        return out


_Attribute, _Name, _Call, _Subscript = ast.Attribute, ast.Name, ast.Call, ast.Subscript


def dotted(node: ast.AST | None) -> str:
    """``a.b.c`` for a Name/Attribute chain; calls inside the chain appear as ``f()``."""
    t = type(node)
    if t is _Name:
        return node.id  # type: ignore[union-attr]
    parts: list[str] = []
    while node is not None:
        t = type(node)
        if t is _Attribute:
            parts.append(node.attr)  # type: ignore[union-attr]
            node = node.value  # type: ignore[union-attr]
        elif t is _Name:
            parts.append(node.id)  # type: ignore[union-attr]
            break
        elif t is _Call:
            inner = dotted(node.func)  # type: ignore[union-attr]
            if not inner:
                return ""
            parts.append(inner + "()")
            break
        elif t is _Subscript:
            inner = dotted(node.value)  # type: ignore[union-attr]
            if not inner:
                return ""
            parts.append(inner + "[]")
            break
        else:
            return ""
    parts.reverse()
    return ".".join(parts)


def calls_in(node: ast.AST) -> list[ast.Call]:
    """Calls inside one statement or expression (a faster ``ast.walk`` filter)."""
    out: list[ast.Call] = []
    stack = [node]
    pop, push, ext = stack.pop, stack.append, stack.extend
    fields_of = _WALK_FIELDS.get
    call, list_t, holey = ast.Call, list, _HOLEY
    while stack:
        n = pop()
        t = type(n)
        if t is call:
            out.append(n)  # type: ignore[arg-type]
        fields = fields_of(t)
        if fields is None:
            fields = _walk_fields(t)
        for f in fields:
            v = getattr(n, f, None)
            if type(v) is list_t:
                if v:
                    ext([x for x in v if x is not None] if t in holey else v)
            elif v is not None:
                push(v)
    return out


# fields that never hold a node rules look up by type: names, flags, and the expression
# context / operator singletons (``Load``, ``Add``...), which no rule asks for
_LEAF_FIELDS = frozenset(
    ("ctx", "op", "ops", "id", "attr", "arg", "asname", "type_comment", "kind", "conversion",
     "is_async", "simple", "level", "module", "tag", "rest", "kwd_attrs")
)  # fmt: skip
_NAME_LISTS = frozenset(("Global", "Nonlocal"))  # their ``names`` are strings
_HOLEY = (ast.Dict, ast.arguments)  # lists with None among the nodes: `{**a}`, kw-only defaults
_WALK_FIELDS: dict[type, tuple[str, ...]] = {}


def _walk_fields(t: type) -> tuple[str, ...]:
    """The fields of node type ``t`` that can hold child nodes (cached per type)."""
    out = []
    for f in t._fields:  # type: ignore[attr-defined]
        if f in _LEAF_FIELDS:
            continue
        if f == "name" and t.__name__ != "TypeAlias":
            continue  # a def's, an alias's, a handler's name: a string
        if f == "names" and t.__name__ in _NAME_LISTS:
            continue
        if f == "value" and t.__name__ in ("Constant", "MatchSingleton"):
            continue
        out.append(f)
    _WALK_FIELDS[t] = fields = tuple(out)
    return fields


def walk_by_type(tree: ast.AST) -> dict[type, list[ast.AST]]:
    """Every node under ``tree`` grouped by type, parents before children within a type
    (one explicit-stack pass; about three times as fast as ``ast.walk``). Expression contexts
    and operators (``Load``, ``Add``...) are not collected."""
    out: dict[type, list[ast.AST]] = {}
    get = out.get
    fields_of = _WALK_FIELDS.get
    stack = [tree]
    pop, push, ext = stack.pop, stack.append, stack.extend
    list_t, holey = list, _HOLEY
    while stack:
        n = pop()
        t = type(n)
        bucket = get(t)
        if bucket is None:
            bucket = out[t] = []
        bucket.append(n)
        fields = fields_of(t)
        if fields is None:
            fields = _walk_fields(t)
        for f in fields:
            v = getattr(n, f, None)
            if type(v) is list_t:
                if v:
                    if t in holey:
                        ext([x for x in reversed(v) if x is not None])
                    else:
                        ext(v[::-1])
            elif v is not None:
                push(v)
    return out


def strip_moves(node: Any, attrs: tuple[str, ...] = ("to", "cuda")) -> Any:
    """``Net().to(dev).cuda()`` -> ``Net()``: the call under device/dtype moves."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in attrs
        and isinstance(node.func.value, ast.Call)
    ):
        node = node.func.value
    return node


def const(node: ast.AST | None, default: Any = MISSING) -> Any:
    """The literal value of a constant (incl. negative numbers, tuples/lists of constants)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = const(node.operand, default)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return -v
        return default
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        vals = [const(e, default) for e in node.elts]
        if any(v is default for v in vals):
            return default
        return vals
    return default


def kwarg(call: ast.AST, name: str) -> ast.expr | None:
    if not isinstance(call, ast.Call):
        return None
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def has_star_kwargs(call: ast.Call) -> bool:
    return any(k.arg is None for k in call.keywords)


# ----------------------------------------------------------------------------- role inference

OPTIMIZER_NAMES = {
    "SGD",
    "Adam",
    "AdamW",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "RMSprop",
    "Rprop",
    "NAdam",
    "RAdam",
    "LBFGS",
    "SparseAdam",
    "Adafactor",
    "Lion",
    "AdamW8bit",
    "Adam8bit",
    "PagedAdamW",
    "PagedAdamW8bit",
    "PagedAdamW32bit",
    "FusedAdam",
    "DeepSpeedCPUAdam",
    "ZeroRedundancyOptimizer",
    "Muon",
    "Lamb",
    "LAMB",
}
MODEL_HINT_RE = re.compile(
    r"(^|[._])(model|net|network|module|policy|encoder|decoder|classifier|backbone|unet|llm|student|teacher|generator|discriminator|critic|actor)\d*$",
    re.I,
)
VERB_RE = re.compile(
    r"(get|load|build|create|make|unwrap|init|setup|prepare|wrap|save|to|convert|register)_", re.I
)
TEST_PATH_RE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")
LOADER_CALLS = {"DataLoader", "StatefulDataLoader"}


def roles_for_value(mod: ModuleFacts, value: ast.expr) -> set[str]:
    """Roles a target takes from the value assigned to it."""
    roles: set[str] = set()
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        if isinstance(value, ast.Name | ast.Attribute):
            src = dotted(value)
            roles |= {r for r in mod.kinds.get(src, set()) if r not in ("softmax", "sigmoid")}
        return roles
    q = mod.resolve(value.func)
    last = q.rsplit(".", 1)[-1]
    head = q.split(".", 1)[0]
    if (
        last in OPTIMIZER_NAMES
        or q.startswith("torch.optim.")
        and last[:1].isupper()
        and "lr_scheduler" not in q
    ):
        roles.add("optimizer")
    if (
        "lr_scheduler" in q
        or re.match(r"get_\w*schedul", last)
        or last.endswith(("LR", "Scheduler", "Warmup"))
    ):
        roles.add("scheduler")
    if last == "GradScaler" or last == "ShardedGradScaler":
        roles.add("scaler")
    if last in ("DistributedDataParallel", "DDP"):
        roles |= {"ddp", "model"}
    if last in ("FullyShardedDataParallel", "FSDP", "fully_shard"):
        roles |= {"fsdp", "model"}
    if last == "DataParallel":
        roles |= {"dp", "model"}
    if last in LOADER_CALLS:
        roles.add("loader")
    if last in ("DistributedSampler", "ElasticDistributedSampler"):
        roles.add("dsampler")
    if last in (
        "Trainer",
        "SFTTrainer",
        "Seq2SeqTrainer",
        "DPOTrainer",
        "RewardTrainer",
        "ORPOTrainer",
        "GRPOTrainer",
        "PPOTrainer",
        "KTOTrainer",
    ):
        roles.add("trainer")
    if last in ("Accelerator",):
        roles.add("accelerator")
    if last == "device" and head in ("torch",) or q == "torch.device":
        roles.add("device")
    if last == "from_pretrained":
        owner = q.rsplit(".", 2)[-2] if q.count(".") >= 1 else ""
        if "Tokenizer" in owner or "Processor" in owner:
            roles.add("tokenizer")
        elif "Config" in owner:
            roles.add("config")
        elif owner:
            roles.add("model")
            if "CausalLM" in owner or "LMHead" in owner:
                roles.add("causal_lm")
    if last in ("get_peft_model", "prepare_model_for_kbit_training", "compile", "PeftModel"):
        if value.args:
            inner = roles_for_value(mod, value.args[0])
            arg = dotted(value.args[0])
            if last != "compile" or "model" in inner or (arg and mod.is_model(arg)):
                roles |= inner | {"model"}
    if last.endswith(("ForCausalLM", "LMHeadModel")) and last[:1].isupper():
        roles |= {"model", "causal_lm"}
    if last in mod.module_classes or last in (
        "Sequential",
        "Linear",
        "Conv2d",
        "LSTM",
        "GRU",
        "Transformer",
        "create_model",
        "resnet18",
        "resnet50",
    ):
        roles.add("model")
    if last.endswith("Loss") and (q.startswith("torch.nn") or head in ("nn",)):
        roles.add("loss_fn")
        roles.add("loss_fn:" + last)
    if q.startswith("torch.") and last in TENSOR_FACTORIES:
        roles.add("tensor")
    if last in ("softmax",) or q.endswith("Softmax()"):
        roles.add("softmax")
    if last in ("log_softmax",):
        roles.add("log_softmax")
    if last in ("sigmoid",):
        roles.add("sigmoid")
    if last in (
        "to",
        "cuda",
        "half",
        "float",
        "bfloat16",
        "train",
        "eval",
        "cpu",
        "requires_grad_",
    ) and isinstance(value.func, ast.Attribute):
        roles |= roles_for_value(mod, value.func.value)
    if isinstance(value.func, ast.Name | ast.Attribute):
        src = dotted(value.func)
        if "model" in mod.kinds.get(src, ()):
            roles.add("model_output")
    return roles


TENSOR_FACTORIES = {
    "zeros",
    "ones",
    "empty",
    "full",
    "rand",
    "randn",
    "randint",
    "arange",
    "linspace",
    "tensor",
    "eye",
    "zeros_like",
    "ones_like",
    "randperm",
    "as_tensor",
    "from_numpy",
}


# ----------------------------------------------------------------------------- module facts


class _ReadLog(dict):
    """``kinds`` during the first binding round: how many roles each read saw (-1: none yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, int]] = []

    def get(self, key, default=None):  # type: ignore[override]
        v = dict.get(self, key)
        self.reads.append((key, -1 if v is None else len(v)))
        return default if v is None else v

    def stale(self) -> bool:
        """Some read saw fewer roles than the name has now."""
        now = dict.get
        return any(
            (-1 if (v := now(self, key)) is None else len(v)) != seen for key, seen in self.reads
        )


class ModuleFacts:
    """Everything rules need about one file, computed in one pass."""

    def __init__(self, tree: ast.Module, source: str, path: str = "<string>") -> None:
        self.tree = tree
        self.source = source
        self.lines = source.splitlines()
        self.path = path
        self.imports: dict[str, str] = {}
        # origins of `from .x import y` (dots dropped) -> how many dots
        self.relative_imports: dict[str, int] = {}
        self.module_classes: dict[str, ast.ClassDef] = {}
        self.functions: dict[str, ast.AST] = {}  # module-level functions
        self.methods: dict[tuple[str, str], ast.AST] = {}
        self.assigns: dict[str, list[tuple[ast.expr, ast.AST]]] = {}
        self.kinds: dict[str, set[str]] = {}
        self.constants: dict[str, Any] = {}
        self.all_calls: list[ast.Call] = []
        self.attr_stmts: list[ast.Expr] = []  # bare `x.attr` expression statements
        self.grad_none: list[ast.Assign] = []
        self._rcache: dict[int, str] = {}
        self.env: dict[str, Any] = {}  # package -> versions.Pin (empty: versions unknown)
        self.program: Any = None  # toolkit.static.program.Program when checked with other files
        self.is_test = bool(TEST_PATH_RE.search(path.replace("\\", "/")))
        self._collect()
        self._cache: dict[str, Any] = {}
        self._by_last: dict[str, list[tuple[int, str, ast.Call]]] | None = None
        self._hb: tuple[Any, bool] | None = None  # (program, _helper_backward() under it)
        self._run_file: bool | None = None  # rules.names.is_run_file, once per file
        self._kw_index: dict[str, list[int]] | None = None  # keyword -> positions in all_calls
        self._ascii: bool | None = None
        self._spelled: dict[str, bool] = {}  # word -> occurs in the source (see spells)

    # -- names

    def resolve(self, func: ast.AST) -> str:
        key = id(func)
        hit = self._rcache.get(key)
        if hit is None:
            hit = self._rcache[key] = self._resolve(func)
        return hit

    def _resolve(self, func: ast.AST) -> str:
        d = dotted(func)
        if not d:
            return ""
        head, _, rest = d.partition(".")
        origin = self.imports.get(head)
        if origin:
            return origin + ("." + rest if rest else "")
        return d

    def has(self, target: str, role: str) -> bool:
        return role in self.kinds.get(target, ())

    def names_with(self, role: str) -> set[str]:
        return {k for k, v in self.kinds.items() if role in v}

    def is_model(self, text: str) -> bool:
        if not text:
            return False
        ks = self.kinds.get(text, set())
        if "model" in ks:
            return True
        if ks & {
            "optimizer",
            "loader",
            "tokenizer",
            "scheduler",
            "tensor",
            "scaler",
            "loss_fn",
            "trainer",
        }:
            return False
        if "()" in text or "[]" in text or text in self.functions:
            return False
        if text.split(".", 1)[0] in self.imports:
            return False  # a module attribute such as torch.jit.trace_module, not a model
        if VERB_RE.match(text.rsplit(".", 1)[-1]):
            return False  # a function that returns a model (unwrap_model, get_model), not one
        return bool(MODEL_HINT_RE.search(text))

    def value_of(self, node: ast.AST | None, default: Any = MISSING) -> Any:
        """Literal value, following a module constant or a simple name assignment."""
        v = const(node, MISSING)
        if v is not MISSING:
            return v
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        return default

    def imported(self, prefix: str) -> bool:
        """Some import of this file names ``prefix`` or a module under it."""
        heads = self._cache.get("import_heads")
        if heads is None:  # every dotted prefix of every import origin, once per file
            heads = self._cache["import_heads"] = set()
            for o in self.imports.values():
                parts = o.split(".")
                heads.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        return prefix in heads

    def _last_index(self) -> dict[str, list[tuple[int, str, ast.Call]]]:
        """Last component of the resolved callee -> (position in ``all_calls``, resolved
        callee, call); built once per file."""
        if self._by_last is None:
            self._by_last = {}
            for i, c in enumerate(self.all_calls):
                q = self.resolve(c.func)
                self._by_last.setdefault(q.rsplit(".", 1)[-1], []).append((i, q, c))
        return self._by_last

    def calls_q(self, *ends: str) -> list[ast.Call]:
        """Every call whose resolved callee ends with one of ``ends`` (``"TrainingArguments"``)."""
        key = "q:" + "|".join(ends)
        if key not in self._cache:
            index = self._last_index()
            out = []
            for e in ends:
                for _i, q, c in index.get(e.rsplit(".", 1)[-1], []):
                    if q == e or q.endswith("." + e):
                        out.append(c)
            self._cache[key] = out
        return self._cache[key]

    def calls_last(self, *lasts: str, endswith: str = "") -> list[tuple[str, ast.Call]]:
        """(resolved callee, call) for the calls whose resolved callee's last component is one
        of ``lasts`` (or ends with ``endswith``), in ``all_calls`` order: what a scan of every
        call filtered on that name would keep, without resolving each call again."""
        index = self._last_index()
        keys = (
            [k for k in index if k.endswith(endswith)] if endswith else list(dict.fromkeys(lasts))
        )
        hits = [h for k in keys for h in index.get(k, ())]
        if len(keys) > 1:
            hits.sort(key=lambda h: h[0])
        return [(q, c) for _i, q, c in hits]

    def mentions(self, *words: str) -> bool:
        """Some of ``words`` may be a name in this file: they occur in its text (a name that
        resolves to ``...softmax`` is spelled out at the call or in an import). Always True for
        non-ASCII text, where identifiers are NFKC-normalized and may be spelled otherwise."""
        if self._ascii is None:
            self._ascii = self.source.isascii()
        return not self._ascii or self.spells(*words)

    def spells(self, *words: str) -> bool:
        """Some of ``words`` occurs in the file's text (each word looked for once per file:
        rules ask for the same words again and again)."""
        seen = self._spelled
        for w in words:
            hit = seen.get(w)
            if hit is None:
                hit = seen[w] = w in self.source
            if hit:
                return True
        return False

    def calls_with_kw(self, *names: str) -> list[ast.Call]:
        """Calls passing a keyword argument among ``names``, in ``all_calls`` order (the ones
        a rule reading that keyword can fire on; the index is built once per file)."""
        if not self.mentions(*names):
            return []  # no such keyword is spelled in this file
        index = self._kw_index
        if index is None:
            index = self._kw_index = {}
            for i, c in enumerate(self.all_calls):
                for k in c.keywords:
                    if k.arg is not None:
                        at = index.setdefault(k.arg, [])
                        if not at or at[-1] != i:
                            at.append(i)
        if len(names) == 1:
            at = index.get(names[0], ())
        else:
            at = sorted({i for n in names for i in index.get(n, ())})
        calls = self.all_calls
        return [calls[i] for i in at]

    def calls_attr(self, *attrs: str) -> list[ast.Call]:
        if len(attrs) == 1:
            return self.calls_by_attr.get(attrs[0], [])
        return [c for a in attrs for c in self.calls_by_attr.get(a, [])]

    def nodes(self, *types: type) -> list[Any]:
        """Every node of these types (from the one walk of the tree)."""
        return [n for t in types for n in self.by_type.get(t, [])]

    def any_call(self, *ends: str) -> bool:
        return bool(self.calls_q(*ends)) or bool(self.calls_attr(*ends))

    def text(self, node: ast.AST) -> str:
        try:
            return ast.unparse(node)
        except Exception:  # pragma: no cover - unparse of odd trees
            return "?"

    @property
    def trains(self) -> bool:
        """The file runs a backward pass or a Trainer: it trains something."""
        if "trains" not in self._cache:
            self._cache["trains"] = bool(
                self.calls_attr("backward")
                or any(
                    isinstance(c.func, ast.Attribute)
                    and "trainer" in self.kinds.get(dotted(c.func.value), ())
                    for _q, c in self.calls_last(endswith="train")
                )
            )
        return self._cache["trains"]

    # -- collection

    def _collect(self) -> None:
        tree = self.tree
        by_type = walk_by_type(tree)
        self.by_type = by_type
        self.size = sum(map(len, by_type.values()))  # nodes (contexts and operators aside)
        get = by_type.get
        for node in get(ast.Import, []):
            for a in node.names:  # type: ignore[attr-defined]
                if a.asname:
                    self.imports[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    self.imports.setdefault(head, head)
        for node in get(ast.ImportFrom, []):
            base = node.module or ""  # type: ignore[attr-defined]
            for a in node.names:  # type: ignore[attr-defined]
                origin = f"{base}.{a.name}" if base else a.name
                self.imports[a.asname or a.name] = origin
                if node.level:  # type: ignore[attr-defined]
                    self.relative_imports.setdefault(origin, node.level)  # type: ignore[attr-defined]
        for node in get(ast.ClassDef, []):
            bases = {dotted(b).rsplit(".", 1)[-1] for b in node.bases}  # type: ignore[attr-defined]
            if bases & {"Module", "PreTrainedModel", "LightningModule"} or any(
                b in self.module_classes for b in bases
            ):
                self.module_classes[node.name] = node  # type: ignore[attr-defined]
            for item in node.body:  # type: ignore[attr-defined]
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.methods[(node.name, item.name)] = item  # type: ignore[attr-defined]
                    item._lc_class = node.name  # type: ignore[attr-defined]
        self.all_calls = get(ast.Call, [])  # type: ignore[assignment]
        self.calls_by_attr: dict[str, list[ast.Call]] = {}
        for c in self.all_calls:
            if isinstance(c.func, ast.Attribute):
                self.calls_by_attr.setdefault(c.func.attr, []).append(c)
        self.attr_stmts = [n for n in get(ast.Expr, []) if isinstance(n.value, ast.Attribute)]  # type: ignore[attr-defined]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions[node.name] = node
        # assignments in source order so wrappers see earlier roles
        assigns: list[tuple[ast.AST, list[ast.expr], ast.expr]] = []
        nodes = [
            *get(ast.Assign, []),
            *get(ast.AnnAssign, []),
            *get(ast.NamedExpr, []),
            *get(ast.For, []),
            *get(ast.AsyncFor, []),
        ]
        for node in nodes:
            if isinstance(node, ast.Assign):
                assigns.append((node, node.targets, node.value))
                for t in node.targets:
                    if (
                        isinstance(t, ast.Attribute)
                        and t.attr == "grad"
                        and isinstance(node.value, ast.Constant)
                        and node.value.value is None
                    ):
                        self.grad_none.append(node)
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                assigns.append((node, [node.target], node.value))
            elif isinstance(node, ast.NamedExpr):
                assigns.append((node, [node.target], node.value))
            elif isinstance(node, ast.For | ast.AsyncFor):
                assigns.append((node, [node.target], node.iter))
        assigns.sort(key=lambda a: (getattr(a[0], "lineno", 0), getattr(a[0], "col_offset", 0)))
        # a second round picks up roles of names read before they were bound (used before
        # their class); it changes nothing unless a read of the first round saw less than the
        # roles the name ended with (roles only grow), so it runs only then
        log = self.kinds = _ReadLog()
        for stmt, targets, value in assigns:
            for t in targets:
                self._bind(stmt, t, value)
        self.kinds = dict(log)
        if log.stale():
            for stmt, targets, value in assigns:
                for t in targets:
                    self._bind(stmt, t, value)
        for k, vals in self.assigns.items():
            seen: set[int] = set()
            self.assigns[k] = [v for v in vals if not (id(v[0]) in seen or seen.add(id(v[0])))]  # type: ignore[func-returns-value]
        self._scopes: list[Scope] | None = None

    def reset(self, program: Any) -> None:
        """Forget scopes and derived caches so they are rebuilt with ``program`` in reach."""
        self.program = program
        self._scopes = None
        self._cache = {}

    @property
    def scopes(self) -> list[Scope]:
        """Ordered events per scope, built on first use (most files never need them)."""
        if self._scopes is None:
            self._scopes = []
            self._build_scopes()
        return self._scopes

    @property
    def bw_scopes(self) -> list[Scope]:
        """Scopes, but only when the file calls ``.backward`` somewhere (else nothing to train)."""
        if self.calls_by_attr.get("backward") or self._helper_backward():
            return self.scopes
        return []

    def _helper_backward(self) -> bool:
        """A function imported from another checked file runs the backward pass (remembered
        per program: rules ask once each)."""
        program = self.program
        if program is None:
            return False
        hit = self._hb
        if hit is not None and hit[0] is program:
            return hit[1]
        found = False
        for origin in self.imports.values():
            fs = program.function(origin, exclude_path=self.path)
            if fs is not None and fs.backward:
                found = True
                break
        self._hb = (program, found)
        return found

    def _build_scopes(self) -> None:
        tree = self.tree
        self._next_loop = 0
        self._loop_nodes: dict[int, ast.AST] = {}
        mod_scope = Scope("<module>", None)
        self._walk_body(tree.body, mod_scope, (), frozenset(), ())
        func_scopes: dict[int, Scope] = {}
        for node in [
            *self.by_type.get(ast.FunctionDef, []),
            *self.by_type.get(ast.AsyncFunctionDef, []),
        ]:
            ctx = frozenset(c for d in node.decorator_list if (c := self._ctx_of(d)))  # type: ignore[attr-defined]
            sc = Scope(node.name, node, cls=getattr(node, "_lc_class", ""))  # type: ignore[attr-defined]
            self._walk_body(node.body, sc, (), ctx, ())  # type: ignore[attr-defined]
            func_scopes[id(node)] = sc
        for sc in [mod_scope, *func_scopes.values()]:
            self._scopes.append(self._inline(sc, func_scopes))  # type: ignore[union-attr]

    def _bind(self, stmt: ast.AST, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            # `model, opt, loader = accelerator.prepare(model, opt, loader)`
            if isinstance(value, ast.Call) and dotted(value.func).endswith("prepare"):
                for t, a in zip(target.elts, value.args, strict=False):
                    self._bind(stmt, t, a)
                return
            if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts):
                for t, v in zip(target.elts, value.elts, strict=True):
                    self._bind(stmt, t, v)
                return
            if isinstance(stmt, ast.For | ast.AsyncFor):
                loaderish = self._loaderish(value)
                for t in ast.walk(target):
                    if isinstance(t, ast.Name):
                        if loaderish:
                            self.kinds.setdefault(t.id, set()).add("batch")
                        self.assigns.setdefault(t.id, []).append((value, stmt))
            return
        name = dotted(target)
        if not name:
            return
        self.assigns.setdefault(name, []).append((value, stmt))
        if isinstance(stmt, ast.For | ast.AsyncFor):
            if self._loaderish(value):
                self.kinds.setdefault(name, set()).add("batch")
            return
        roles = roles_for_value(self, value)
        if roles:
            self.kinds.setdefault(name, set()).update(roles)
        v = const(value)
        if v is not MISSING and isinstance(target, ast.Name):
            self.constants[name] = v

    def _loaderish(self, value: ast.AST, depth: int = 0) -> bool:
        """The iterable of a for loop yields batches (a DataLoader, or enumerate/tqdm of one)."""
        if depth > 2:
            return False
        if isinstance(value, ast.Call):
            last = dotted(value.func).rsplit(".", 1)[-1]
            if last in ("enumerate", "tqdm", "zip", "iter") and value.args:
                return any(self._loaderish(a, depth + 1) for a in value.args)
            if last in LOADER_CALLS:
                return True
            return False
        it = dotted(value)
        if not it:
            return False
        return "loader" in self.kinds.get(it, ()) or bool(
            re.search(r"loader|batches|dataloader", it, re.I)
        )

    def _ctx_of(self, expr: ast.AST) -> str:
        node = expr.func if isinstance(expr, ast.Call) else expr
        q = self.resolve(node)
        last = q.rsplit(".", 1)[-1]
        if last == "no_grad":
            return "no_grad"
        if last == "context" and "dist_autograd" in q:
            return "dist_autograd"  # gradients live per context: nothing to clear between steps
        if last in ("accumulate", "no_backward_sync", "no_sync"):
            return "accumulate"  # a wrapper skips the sync on micro-batches
        if last == "inference_mode":
            return "inference_mode"
        if last == "set_grad_enabled" and isinstance(expr, ast.Call) and expr.args:
            if const(expr.args[0]) is False:
                return "no_grad"
        if last == "autocast":
            if isinstance(expr, ast.Call) and const(kwarg(expr, "enabled")) is False:
                return ""
            return "autocast"
        return ""

    def _walk_body(
        self,
        body: list[ast.stmt],
        sc: Scope,
        loops: tuple[int, ...],
        ctx: frozenset[str],
        ifs: tuple[ast.expr, ...],
        arms: tuple[tuple[str, int], ...] = (),
    ) -> None:
        for st in body:
            if isinstance(st, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if isinstance(st, ast.FunctionDef | ast.AsyncFunctionDef):
                    for d in st.decorator_list:
                        self._add_calls(d, sc, loops, ctx, ifs, arms)
                continue
            if isinstance(st, ast.For | ast.AsyncFor | ast.While):
                head = st.iter if isinstance(st, ast.For | ast.AsyncFor) else st.test
                self._add_calls(head, sc, loops, ctx, ifs, arms)
                self._next_loop += 1
                lid = self._next_loop
                sc.loops[lid] = st
                self._loop_nodes[lid] = st
                self._walk_body(st.body, sc, (*loops, lid), ctx, ifs, arms)
                self._walk_body(st.orelse, sc, loops, ctx, ifs, arms)
            elif isinstance(st, ast.With | ast.AsyncWith):
                new = set(ctx)
                for item in st.items:
                    self._add_calls(item.context_expr, sc, loops, ctx, ifs, arms)
                    c = self._ctx_of(item.context_expr)
                    if c:
                        new.add(c)
                self._walk_body(st.body, sc, loops, frozenset(new), ifs, arms)
            elif isinstance(st, ast.If):
                self._add_calls(st.test, sc, loops, ctx, ifs, arms)
                key, flip = arm_key(st.test)
                self._walk_body(st.body, sc, loops, ctx, (*ifs, st.test), (*arms, (key, flip)))
                self._walk_body(
                    st.orelse, sc, loops, ctx, (*ifs, st.test), (*arms, (key, 1 - flip))
                )
            elif isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
                self._walk_body(st.body, sc, loops, ctx, ifs, arms)  # type: ignore[attr-defined]
                for h in st.handlers:  # type: ignore[attr-defined]
                    self._walk_body(h.body, sc, loops, ctx, ifs, arms)
                self._walk_body(st.orelse, sc, loops, ctx, ifs, arms)  # type: ignore[attr-defined]
                self._walk_body(st.finalbody, sc, loops, ctx, ifs, arms)  # type: ignore[attr-defined]
            elif type(st).__name__ == "Match":
                self._add_calls(st.subject, sc, loops, ctx, ifs, arms)  # type: ignore[attr-defined]
                mk = f"<match {id(st)}>"
                for i, case in enumerate(st.cases):  # type: ignore[attr-defined]
                    self._walk_body(case.body, sc, loops, ctx, ifs, (*arms, (mk, i)))
            else:
                self._add_calls(st, sc, loops, ctx, ifs, arms)
                if isinstance(st, ast.Assign) and st in self.grad_none:
                    sc.events.append(
                        Event(
                            st,
                            "<grad=None>",
                            "zero_grad",
                            dotted(st.targets[0]),
                            0,
                            loops,
                            ctx,
                            ifs,
                            arms=arms,
                        )
                    )

    def _add_calls(
        self,
        node: ast.AST,
        sc: Scope,
        loops: tuple[int, ...],
        ctx: frozenset[str],
        ifs: tuple[ast.expr, ...],
        arms: tuple[tuple[str, int], ...] = (),
    ) -> None:
        calls = calls_in(node)
        # inner calls run before outer ones: `scaler.scale(loss).backward()` -> scale, backward
        calls.sort(
            key=lambda c: (getattr(c.func, "end_lineno", 0), getattr(c.func, "end_col_offset", 0))
        )
        for c in calls:
            f = c.func
            q = self.resolve(f)
            attr = (
                f.attr
                if isinstance(f, ast.Attribute)
                else (f.id if isinstance(f, ast.Name) else "")
            )
            recv = dotted(f.value) if isinstance(f, ast.Attribute) else ""
            sc.events.append(Event(c, q, attr, recv, 0, loops, ctx, ifs, arms=arms))

    def _inline(self, sc: Scope, func_scopes: dict[int, Scope]) -> Scope:
        out = Scope(sc.name, sc.node, loops=dict(sc.loops), cls=sc.cls)
        for e in sc.events:
            out.events.append(e)
            target = None
            if isinstance(e.node, ast.Call):
                f = e.node.func
                if isinstance(f, ast.Name) and f.id in self.functions:
                    target = self.functions[f.id]
                elif (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and f.value.id == "self"
                    and (sc.cls, f.attr) in self.methods
                ):
                    target = self.methods[(sc.cls, f.attr)]
            if target is None and self.program is not None and isinstance(e.node, ast.Call):
                out.events.extend(self._summary_events(e))
                continue
            if target is None or target is sc.node:
                continue
            helper = func_scopes.get(id(target))
            if helper is None:
                continue
            out.loops.update(helper.loops)
            for he in helper.events:
                out.events.append(
                    Event(
                        he.node,
                        he.q,
                        he.attr,
                        he.recv,
                        0,
                        e.loops + he.loops,
                        e.ctx | he.ctx,
                        e.ifs + he.ifs,
                        via=helper.name,
                        arms=e.arms + he.arms,
                    )
                )
        for i, e in enumerate(out.events):
            e.idx = i
        return out

    def _summary_events(self, e: Event) -> list[Event]:
        """A call into another checked file: its summary's effects as events at the call site
        (``evaluate(model, loader)`` whose body calls ``model.eval()`` -> ``model.eval()`` here)."""
        call = e.node
        f = call.func  # type: ignore[attr-defined]
        if not isinstance(f, ast.Name | ast.Attribute) or not e.q:
            return []
        if isinstance(f, ast.Attribute) and e.q.split(".", 1)[0] not in self.imports:
            return []
        fs = self.program.function(e.q, exclude_path=self.path)  # type: ignore[union-attr]
        if fs is None:
            return []

        def arg_for(recv: str) -> ast.expr | None:
            head, _, rest = recv.partition(".")
            if head not in fs.params:
                return None
            i = fs.params.index(head)
            node = call.args[i] if i < len(call.args) else kwarg(call, head)  # type: ignore[attr-defined]
            if node is None or isinstance(node, ast.Starred):
                return None
            if rest:
                node = ast.Attribute(value=node, attr=rest, ctx=ast.Load())
            return node

        out: list[Event] = []

        def add(attr: str, recv: str) -> None:
            target = arg_for(recv) if recv else None
            if target is None and recv:
                if attr in ("eval", "train"):
                    return  # a model we cannot name at the call site
            fake = ast.Call(
                func=ast.Attribute(
                    value=target if target is not None else ast.Name(id="_", ctx=ast.Load()),
                    attr=attr,
                    ctx=ast.Load(),
                )
                if target is not None
                else ast.Name(id=attr, ctx=ast.Load()),
                args=[],
                keywords=[],
            )
            ast.copy_location(fake, call)
            fake.end_lineno, fake.end_col_offset = call.end_lineno, call.end_col_offset  # type: ignore[attr-defined]
            out.append(
                Event(
                    fake,
                    f"<{fs.name}>",
                    attr,
                    dotted(target) if target is not None else "",
                    0,
                    e.loops,
                    e.ctx,
                    e.ifs,
                    via=fs.name,
                    arms=e.arms,
                )
            )

        for r in fs.clears_grads:
            add("zero_grad", r)
        if fs.backward:
            add("backward", "")
        for r in fs.sets_eval:
            add("eval", r)
        for r in fs.sets_train:
            add("train", r)
        if fs.sets_epoch:
            add("set_epoch", "")
        return out


# ----------------------------------------------------------------------------- running rules


def parse_noqa(lines: list[str]) -> dict[int, set[str] | None]:
    """line number -> suppressed codes (``None``: all)."""
    out: dict[int, set[str] | None] = {}
    for i, text in enumerate(lines, 1):
        if "#" not in text or "noqa" not in text.lower():
            continue
        m = NOQA_RE.search(text)
        if not m:
            continue
        codes = m.group("codes")
        if not codes:
            out[i] = None
            continue
        got = {c.strip().upper() for c in codes.split(",")}
        if "F821" in got:  # pyflakes/flake8/ruff's undefined-name code: the same finding
            got |= {"LC001", "LC004"}
        out[i] = got
    return out


def code_matches(code: str, patterns: Iterable[str]) -> bool:
    return any(code == p or (p and code.startswith(p)) for p in patterns)


def parse_facts(source: str, path: str = "<string>") -> tuple[ModuleFacts | None, str | None]:
    """Parse one file and collect its facts; (None, message) on a parse error."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        return None, f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}" + (
            f" (line {line})" if line else ""
        )
    try:
        return ModuleFacts(tree, source, path), None
    except RecursionError:
        return None, "RecursionError: file nested too deeply to analyze"
    except Exception as exc:  # pragma: no cover - never crash on any input
        return None, f"internal analyzer error (please report): {type(exc).__name__}: {exc}"


def analyze_source(
    source: str,
    path: str = "<string>",
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    env: dict[str, Any] | None = None,
) -> tuple[list[Finding], str | None]:
    """Findings for one file's text; second item is a parse error message or None.

    ``env``: package -> :class:`toolkit.static.versions.Pin` the file runs with (None: unknown,
    version-dependent rules assume the oldest supported release)."""
    facts, err = parse_facts(source, path)
    if facts is None:
        return [], err
    facts.env = env or {}
    from toolkit.static.program import Program, summarize

    try:
        facts.program = Program([summarize(facts, [Path(path).stem])])
    except RecursionError:
        pass
    facts._cache = {}
    return run_rules(facts, select, ignore)


def run_rules(
    facts: ModuleFacts, select: Iterable[str] | None = None, ignore: Iterable[str] = ()
) -> tuple[list[Finding], str | None]:
    """Every selected rule over one file's facts."""
    from toolkit.static.catalogue import all_rules

    path = facts.path
    select = list(select) if select else None
    ignore = list(ignore)
    noqa = parse_noqa(facts.lines)
    findings: list[Finding] = []
    internal: list[str] = []
    seen: set[tuple[str, int, int]] = set()
    for r in all_rules():
        if select is not None and not code_matches(r.code, select):
            continue
        if ignore and code_matches(r.code, ignore):
            continue
        try:
            hits = list(r.check(facts))
        except Exception as exc:  # a rule bug must not stop the run: report it, go on
            internal.append(f"{r.code}: {type(exc).__name__}: {exc}")
            continue
        for h in hits:
            line = getattr(h.node, "lineno", None) or (h.node if isinstance(h.node, int) else 1)
            col = (getattr(h.node, "col_offset", 0) or 0) + 1
            key = (r.code, line, col)
            if key in seen:
                continue
            seen.add(key)
            sup = noqa.get(line, MISSING)
            if sup is None or (sup is not MISSING and r.code in sup):  # type: ignore[operator]
                continue
            # A test file is not a training run: its hygiene warnings (eval mode, devices,
            # loaders, checkpoints) are reported as info; errors keep their severity.
            sev = "info" if facts.is_test and r.severity == "warning" else r.severity
            findings.append(
                Finding(r.code, r.name, sev, path, line, col, h.message, h.fix or r.fix)
            )
    findings.sort(key=lambda f: (f.line, f.col, f.code))
    if internal:
        return findings, "internal analyzer error (please report): " + "; ".join(internal)
    return findings, None


def iter_py_files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*.py")):
                if f.is_file() and not any(part in ("__pycache__",) for part in f.parts):
                    yield f
        else:
            yield p
