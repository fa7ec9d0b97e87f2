"""Instruction compliance: does the code do what the user asked for (``--spec SPEC.yaml``)?

The spec is a flat YAML mapping of what was asked (``model``, ``learning_rate``, ``batch_size``,
``epochs``, ``precision``, ``method`` full/lora/qlora, ``lora_r``, ``gpus``, ``output_dir``...).
The code's values are extracted statically from keyword arguments (``TrainingArguments``,
``LoraConfig``, ``from_pretrained``...), argparse defaults, dict literals, plain assignments
and seeding calls, then mapped to the same canonical keys. Each spec key ends as:

- ``match``: every value found in the code equals the spec;
- ``deviation`` (error): a value found in the code differs from the spec;
- ``not_found``: the spec states it but no value was found in the code (cannot verify);

and canonical values the code sets that the spec does not state are ``assumptions``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.cli import render_table
from toolkit.errors import InputError
from toolkit.static.engine import MISSING, ModuleFacts, const, dotted, kwarg
from toolkit.static.rules._common import dtype_name

# canonical key -> names used for it in code (lower-case)
ALIASES: dict[str, tuple[str, ...]] = {
    "model": (
        "model",
        "model_id",
        "model_name",
        "model_name_or_path",
        "base_model",
        "pretrained_model_name_or_path",
        "model_path",
        "base_model_id",
    ),
    "learning_rate": ("learning_rate", "lr", "learning-rate", "base_lr", "peak_lr", "max_lr"),
    "batch_size": (
        "batch_size",
        "per_device_train_batch_size",
        "train_batch_size",
        "micro_batch_size",
        "bs",
        "batch",
    ),
    "epochs": ("epochs", "num_train_epochs", "num_epochs", "n_epochs", "max_epochs", "epoch"),
    "max_steps": (
        "max_steps",
        "num_steps",
        "total_steps",
        "train_steps",
        "num_training_steps",
        "max_iters",
    ),
    "gradient_accumulation_steps": (
        "gradient_accumulation_steps",
        "grad_accum",
        "grad_accum_steps",
        "accumulation_steps",
        "accum_steps",
        "gradient_accumulation",
    ),
    "weight_decay": ("weight_decay", "wd"),
    "warmup_steps": ("warmup_steps", "num_warmup_steps", "warmup"),
    "warmup_ratio": ("warmup_ratio",),
    "max_seq_length": (
        "max_seq_length",
        "max_seq_len",
        "max_length",
        "max_len",
        "seq_len",
        "block_size",
        "context_length",
        "cutoff_len",
    ),
    "lora_r": ("lora_r", "lora_rank", "rank"),
    "lora_alpha": ("lora_alpha",),
    "lora_dropout": ("lora_dropout",),
    "output_dir": (
        "output_dir",
        "out_dir",
        "save_dir",
        "output_path",
        "checkpoint_dir",
        "ckpt_dir",
    ),
    "seed": ("seed", "random_seed"),
    "gpus": (
        "gpus",
        "num_gpus",
        "n_gpus",
        "nproc_per_node",
        "num_processes",
        "tensor_parallel_size",
        "tp_size",
        "world_size",
    ),
    "optimizer": ("optim", "optimizer"),
    "lr_scheduler": ("lr_scheduler_type", "lr_scheduler", "scheduler"),
    "eval_steps": ("eval_steps",),
    "save_steps": ("save_steps",),
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "max_new_tokens": ("max_new_tokens", "max_tokens"),
}
SPEC_ALIASES = {
    **{a: k for k, names in ALIASES.items() for a in names},
    "precision": "precision",
    "dtype": "precision",
    "method": "method",
    "finetuning": "method",
}
NAME_TO_KEY = {a: k for k, names in ALIASES.items() for a in names}
KWARG_ONLY = {"r": "lora_r"}  # LoraConfig(r=...)


@dataclass
class Found:
    key: str
    value: Any
    path: str
    line: int
    how: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "location": f"{self.path}:{self.line}", "how": self.how}


@dataclass
class Item:
    key: str
    status: str  # match | deviation | not_found | assumption
    spec: Any
    found: list[Found] = field(default_factory=list)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "spec": self.spec,
            "found": [f.as_dict() for f in self.found],
            "message": self.message,
        }


@dataclass
class ComplianceReport:
    items: list[Item] = field(default_factory=list)

    @property
    def deviations(self) -> list[Item]:
        return [i for i in self.items if i.status == "deviation"]

    def by(self, status: str) -> list[Item]:
        return [i for i in self.items if i.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "matches": [i.as_dict() for i in self.by("match")],
            "deviations": [i.as_dict() for i in self.by("deviation")],
            "not_found": [i.as_dict() for i in self.by("not_found")],
            "assumptions": [i.as_dict() for i in self.by("assumption")],
        }


def load_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"--spec: {path} is not a file; expected a YAML mapping of what was asked")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"--spec: {path}: cannot read YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"--spec: {path}: expected a mapping such as 'learning_rate: 2e-4'")
    out: dict[str, Any] = {}
    for k, v in _flatten(data).items():
        key = SPEC_ALIASES.get(str(k).lower().replace("-", "_"), str(k).lower())
        out[key] = v
    return out


def _flatten(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            for k2, v2 in _flatten(v).items():
                out[
                    k2
                    if str(k) not in ("lora", "peft")
                    else f"lora_{k2}".replace("lora_lora_", "lora_")
                ] = v2
        else:
            out[str(k)] = v
    return out


# ----------------------------------------------------------------------------- extraction


def _key_for(name: str) -> str | None:
    n = name.lower().lstrip("-").replace("-", "_")
    n = n.rsplit(".", 1)[-1]
    return NAME_TO_KEY.get(n)


def extract(mod: ModuleFacts) -> list[Found]:
    """Canonical values the code uses."""
    out: list[Found] = []
    path = mod.path

    def add(key: str | None, node: ast.AST | None, how: str, line_node: ast.AST) -> None:
        if key is None or node is None:
            return
        v = mod.value_of(node, MISSING)
        if v is MISSING or v is None or isinstance(v, list):
            return
        out.append(Found(key, v, path, getattr(line_node, "lineno", 1), how))

    for c in mod.all_calls:
        callee = dotted(c.func)
        last = callee.rsplit(".", 1)[-1]
        if last == "add_argument":
            opts = [const(a, None) for a in c.args]
            opts = [o for o in opts if isinstance(o, str)]
            key = next((k for o in opts if (k := _key_for(o))), None)
            add(key, kwarg(c, "default"), "argparse default", c)
            continue
        for k in c.keywords:
            if k.arg is None:
                continue
            key = _key_for(k.arg) or (KWARG_ONLY.get(k.arg) if last == "LoraConfig" else None)
            if key == "model" and last in ("from_pretrained",):
                key = None
            if key in ("lora_r",) and last not in ("LoraConfig",) and k.arg != "lora_r":
                continue
            if key:
                add(key, k.value, f"{last}({k.arg}=)", c)
        if last == "from_pretrained" and c.args:
            owner = callee.rsplit(".", 2)[-2] if "." in callee else ""
            if "Tokenizer" not in owner and "Config" not in owner and "Processor" not in owner:
                add("model", c.args[0], f"{owner}.from_pretrained", c)
        if last in ("manual_seed", "set_seed", "seed_everything") and c.args:
            add("seed", c.args[0], f"{last}()", c)
        if last in ("LLM",) and kwarg(c, "model") is not None:
            add("model", kwarg(c, "model"), "LLM(model=)", c)
    for node in mod.nodes(ast.Dict):
        for k, v in zip(node.keys, node.values, strict=False):
            kk = const(k, None)
            if isinstance(kk, str):
                add(_key_for(kk), v, f"dict key {kk!r}", node)
    for name, vals in mod.assigns.items():
        key = _key_for(name)
        for v, st in vals:
            if key and not isinstance(st, ast.For | ast.AsyncFor):
                add(key, v, f"{name} =", st)
    # derived: precision and method
    precision = []
    for c in mod.all_calls:
        last = dotted(c.func).rsplit(".", 1)[-1]
        if mod.value_of(kwarg(c, "bf16"), None) is True:
            precision.append(("bf16", c, f"{last}(bf16=True)"))
        if mod.value_of(kwarg(c, "fp16"), None) is True:
            precision.append(("fp16", c, f"{last}(fp16=True)"))
        if last == "autocast":
            dt = dtype_name(kwarg(c, "dtype"))
            if dt:
                precision.append(
                    ({"float16": "fp16", "bfloat16": "bf16"}.get(dt, dt), c, "autocast(dtype=)")
                )
        mp = mod.value_of(kwarg(c, "mixed_precision"), None)
        if isinstance(mp, str):
            precision.append((mp, c, f"{last}(mixed_precision=)"))
        if last == "from_pretrained":
            dt = dtype_name(kwarg(c, "torch_dtype") or kwarg(c, "dtype"))
            if dt in ("float16", "bfloat16", "float32"):
                precision.append(
                    (
                        {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}[dt],
                        c,
                        "from_pretrained(torch_dtype=)",
                    )
                )
    for p, c, how in precision:
        out.append(Found("precision", p, path, c.lineno, how))
    quant = bool(mod.calls_q("BitsAndBytesConfig")) or any(
        mod.value_of(kwarg(c, "load_in_4bit"), None) is True for c in mod.all_calls
    )
    lora = mod.calls_q("LoraConfig") or mod.calls_q("get_peft_model")
    if lora:
        method = "qlora" if quant else "lora"
        out.append(
            Found(
                "method",
                method,
                path,
                lora[0].lineno,
                "LoraConfig/get_peft_model" + (" + 4-bit" if quant else ""),
            )
        )
    elif mod.trains:
        first = mod.calls_attr("backward") or mod.calls_q("Trainer", "SFTTrainer")
        line = first[0].lineno if first else 1
        out.append(Found("method", "full", path, line, "training without PEFT adapters"))
    return out


# ----------------------------------------------------------------------------- comparison


def _norm(key: str, v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if key == "precision" and isinstance(v, str):
        t = v.lower().replace("_", "").replace("-", "")
        t = {
            "bfloat16": "bf16",
            "float16": "fp16",
            "half": "fp16",
            "float32": "fp32",
            "no": "fp32",
            "full": "fp32",
            "amp": "fp16",
        }.get(t, t)
        return t
    if key == "method" and isinstance(v, str):
        t = v.lower().replace("-", "").replace("_", "")
        return {
            "fullfinetune": "full",
            "fullfinetuning": "full",
            "sft": "full",
            "peft": "lora",
        }.get(t, t)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v.strip().rstrip("/").lower()
    return v


def same(key: str, a: Any, b: Any) -> bool:
    x, y = _norm(key, a), _norm(key, b)
    if (
        isinstance(x, int | float)
        and isinstance(y, int | float)
        and not isinstance(x, bool)
        and not isinstance(y, bool)
    ):
        return math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12)
    if key in ("model", "output_dir") and isinstance(x, str) and isinstance(y, str):
        return x == y or x.endswith("/" + y) or y.endswith("/" + x)
    return x == y


def check_compliance(spec: dict[str, Any], files: list[Path]) -> ComplianceReport:
    found: list[Found] = []
    for f in files:
        try:
            src = f.read_text(encoding="utf-8")
            tree = ast.parse(src)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
            continue
        try:
            found.extend(extract(ModuleFacts(tree, src, str(f))))
        except RecursionError:
            continue
    by_key: dict[str, list[Found]] = {}
    for fd in found:
        by_key.setdefault(fd.key, []).append(fd)
    if "precision" not in by_key and "method" in by_key:
        by_key["precision"] = [
            Found(
                "precision",
                "fp32",
                by_key["method"][0].path,
                by_key["method"][0].line,
                "no mixed precision found (default fp32)",
            )
        ]
    report = ComplianceReport()
    for key, want in spec.items():
        got = by_key.get(key, [])
        if not got:
            report.items.append(
                Item(
                    key,
                    "not_found",
                    want,
                    [],
                    f"the spec sets {key}={want!r} but no value for it was found in the code",
                )
            )
            continue
        bad = [g for g in got if not same(key, want, g.value)]
        if bad:
            vals = sorted({repr(g.value) for g in bad})
            report.items.append(
                Item(
                    key,
                    "deviation",
                    want,
                    bad,
                    f"spec asks {key}={want!r}; code uses {', '.join(vals)}",
                )
            )
        else:
            report.items.append(Item(key, "match", want, got, f"{key}={want!r} as asked"))
    for key, got in sorted(by_key.items()):
        if key in spec:
            continue
        vals = sorted({repr(g.value) for g in got})
        report.items.append(
            Item(
                key,
                "assumption",
                None,
                got,
                f"the spec does not state {key}; code assumes {', '.join(vals)}",
            )
        )
    return report


def render_compliance(report: ComplianceReport) -> str:
    rows = []
    for i in report.items:
        loc = ", ".join(f"{f.path}:{f.line}" for f in i.found[:3]) + (
            " ..." if len(i.found) > 3 else ""
        )
        code_vals = ", ".join(sorted({repr(f.value) for f in i.found})) or "-"
        rows.append((i.status, i.key, "-" if i.spec is None else repr(i.spec), code_vals, loc))
    order = {"deviation": 0, "not_found": 1, "match": 2, "assumption": 3}
    rows.sort(key=lambda r: (order.get(r[0], 9), r[1]))
    head = f"instruction compliance: {len(report.by('match'))} match, {len(report.deviations)} deviation(s), {len(report.by('not_found'))} not found, {len(report.by('assumption'))} assumption(s)"
    return head + "\n" + render_table(("status", "key", "spec", "code", "where"), rows)


def sarif_results(report: ComplianceReport) -> list[dict[str, Any]]:
    out = []
    for i in report.deviations:
        f = i.found[0]
        out.append(
            {
                "ruleId": "LC-SPEC",
                "level": "error",
                "message": {"text": i.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": Path(f.path).as_posix()},
                            "region": {"startLine": f.line},
                        }
                    }
                ],
            }
        )
    return out
