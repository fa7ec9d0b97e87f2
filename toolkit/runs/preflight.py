"""Pre-flight before a long run: ``python -m toolkit.runs.preflight CONFIG --script train.py``.

Three gates, each reported with the file and line or key that decided it:

1. **logging backend present**: the backends the script imports or the config names
   (W&B, MLflow, TensorBoard, Lightning loggers, HF ``report_to``, a JSONL/CSV writer) are
   found, and each one's library imports in the training interpreter (``--python``, default
   this one). ``report_to: none`` or no backend at all fails: the run would leave no curves.
2. **validation split present**: a config key names the validation data (``val_*``,
   ``eval_*``, ``validation_*``, ``dev_*``): a path must exist and be non-empty, a fraction or
   percentage must be > 0; failing that the script must build one (``eval_dataset=``,
   ``validation_step``, ``val_loader``, ``evaluate(``).
3. **config echoed and confirmed**: the resolved config is printed key by key with its
   SHA-256 (first 12 hex digits). ``--confirm HASH`` with that hash records the confirmation in
   ``.labcoat/preflight/<config>-<hash>.json``; a config changed since gets a new hash and must
   be confirmed again.

Exit codes: 0 every gate passes and the config is confirmed; 1 a gate failed or the config is
not confirmed yet; 2 usage or input error (unreadable config or script).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.cli import EXIT_FAILED, EXIT_OK, Parser, add_format_flag, print_json, render_table, run
from toolkit.errors import InputError

PROG = "python -m toolkit.runs.preflight"

# backend -> the module that must import for it (None: no library needed)
BACKEND_MODULES: dict[str, str | None] = {
    "wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tensorboard", "comet": "comet_ml",
    "neptune": "neptune", "aim": "aim", "clearml": "clearml", "csv": None, "jsonl": None,
}  # fmt: skip
SCRIPT_BACKENDS: list[tuple[str, re.Pattern[str]]] = [
    ("wandb", re.compile(r"^\s*(?:import|from)\s+wandb\b|\bWandbLogger\b", re.M)),
    ("mlflow", re.compile(r"^\s*(?:import|from)\s+mlflow\b|\bMLFlowLogger\b", re.M)),
    (
        "tensorboard",
        re.compile(
            r"\bSummaryWriter\b|\bTensorBoardLogger\b|^\s*(?:import|from)\s+tensorboard", re.M
        ),
    ),  # fmt: skip
    ("comet", re.compile(r"^\s*(?:import|from)\s+comet_ml\b|\bCometLogger\b", re.M)),
    ("neptune", re.compile(r"^\s*(?:import|from)\s+neptune\b|\bNeptuneLogger\b", re.M)),
    ("aim", re.compile(r"^\s*(?:import|from)\s+aim\b", re.M)),
    ("clearml", re.compile(r"^\s*(?:import|from)\s+clearml\b", re.M)),
    ("csv", re.compile(r"\bCSVLogger\b|csv\.(?:writer|DictWriter)\(", re.M)),
    ("jsonl", re.compile(r"json\.dumps\([^)]*\)\s*\+\s*[\"']\\n[\"']", re.M)),
]
REPORT_TO_RE = re.compile(r"report_to\s*=\s*(\[[^\]]*\]|[\"'][^\"']*[\"'])")
LOGGER_KEY_RE = re.compile(r"(?:^|\.)(?:report_to|loggers?|logging\.backend|tracker|trackers)$")
VAL_KEY_RE = re.compile(r"(?:^|[._])(?:val|valid|validation|eval|evaluation|dev|held_?out)(?:[._]|$)", re.I)  # fmt: skip
VAL_SCRIPT_RE = re.compile(r"\beval_dataset\s*=|\bvalidation_step\b|\bval_(?:loader|dataloader|dataset|data)\b|\bevaluate\(|\beval_loader\b", re.M)  # fmt: skip
PATHY_RE = re.compile(r"[/\\]|\.(?:jsonl?|csv|parquet|arrow|txt|tsv|bin|npy|pt|tar|zip|gz)$", re.I)


@dataclass
class Gate:
    name: str  # logging | validation | config
    ok: bool
    detail: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class Preflight:
    config: str
    sha256: str
    confirmed: bool
    gates: list[Gate]
    echo: list[tuple[str, str]]
    record: str | None = None

    @property
    def ok(self) -> bool:
        return self.confirmed and all(g.ok for g in self.gates)


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        out = []
        for key, value in obj.items():
            out += flatten(value, f"{prefix}{key}.")
        return out
    return [(prefix.rstrip("."), obj)]


def load_config(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a YAML/JSON config ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings at the top level")
    return data, raw


def _importable(python: str, modules: list[str]) -> dict[str, bool]:
    code = ("import importlib.util, json, sys; "
            "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))")  # fmt: skip
    try:
        out = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"--python {python}: cannot run it ({exc})") from None
    if out.returncode != 0:
        raise InputError(f"--python {python}: exited {out.returncode}: {out.stderr.strip()[-200:]}")
    return json.loads(out.stdout)


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip().lower() for v in re.split(r"[,\s]+", value.strip("[]'\"")) if v.strip()]
    if isinstance(value, list):
        return [str(v).strip("'\" ").lower() for v in value]
    if isinstance(value, dict):
        return [str(k).lower() for k in value]
    return []


def check_logging(items: list[tuple[str, Any]], script: tuple[Path, str] | None, python: str) -> Gate:  # fmt: skip
    found: dict[str, str] = {}  # backend -> where
    disabled = []
    for key, value in items:
        if LOGGER_KEY_RE.search(key):
            for name in _names(value):
                if name in ("none", "false", "null", ""):
                    disabled.append(f"config {key}: {value!r}")
                for backend in BACKEND_MODULES:
                    if backend in name:
                        found.setdefault(backend, f"config {key}")
    if script is not None:
        path, text = script
        for backend, rx in SCRIPT_BACKENDS:
            m = rx.search(text)
            if m:
                found.setdefault(backend, f"{path}:{text.count(chr(10), 0, m.start()) + 1}")
        for m in REPORT_TO_RE.finditer(text):
            line = f"{path}:{text.count(chr(10), 0, m.start()) + 1}"
            names = _names(m.group(1))
            if any(n in ("none", "") for n in names) or not names:
                disabled.append(f"{line}: report_to={m.group(1)}")
            for backend in BACKEND_MODULES:
                if any(backend in n for n in names):
                    found.setdefault(backend, line)
    if not found:
        why = "; ".join(disabled) or "no logger in the config or the script"
        return Gate("logging", False, f"no logging backend: the run would leave no curves ({why})")
    modules = sorted({m for b in found if (m := BACKEND_MODULES[b])})
    present = _importable(python, modules) if modules else {}
    missing = [b for b in found if BACKEND_MODULES[b] and not present.get(BACKEND_MODULES[b])]
    evidence = [
        f"{b}: {where}" + (" (not importable)" if b in missing else "")
        for b, where in found.items()
    ]
    if missing:
        return Gate("logging", False, f"{', '.join(missing)} named but not importable in {python}: pip install {' '.join(BACKEND_MODULES[b] or b for b in missing)}", evidence)  # fmt: skip
    return Gate("logging", True, f"{', '.join(found)} present", evidence)


def check_validation(items: list[tuple[str, Any]], base: Path, script: tuple[Path, str] | None) -> Gate:  # fmt: skip
    evidence, problems = [], []
    for key, value in items:
        leaf = key.rsplit(".", 1)[-1]
        if not VAL_KEY_RE.search(leaf) or re.search(r"steps|interval|every|freq|batch|size_per|strategy", leaf, re.I):  # fmt: skip
            continue
        if isinstance(value, bool) or value is None:
            if not value:
                problems.append(f"config {key}: {value!r} (no validation)")
            continue
        if isinstance(value, int | float):
            (evidence if value > 0 else problems).append(f"config {key}: {value}")
            continue
        if isinstance(value, str) and PATHY_RE.search(value):
            path = Path(value) if Path(value).is_absolute() else base / value
            if not path.exists():
                problems.append(f"config {key}: {value} does not exist")
            elif path.is_file() and path.stat().st_size == 0:
                problems.append(f"config {key}: {value} is empty")
            elif path.is_dir() and not any(path.iterdir()):
                problems.append(f"config {key}: {value} is an empty folder")
            else:
                evidence.append(f"config {key}: {value}")
        elif isinstance(value, str) and value.strip():
            evidence.append(f"config {key}: {value}")  # a dataset split name ('validation')
    if problems:
        return Gate("validation", False, "; ".join(problems), evidence)
    if evidence:
        return Gate("validation", True, "validation split named in the config", evidence)
    if script is not None:
        path, text = script
        m = VAL_SCRIPT_RE.search(text)
        if m:
            line = text.count("\n", 0, m.start()) + 1
            return Gate("validation", True, "the script builds a validation set", [f"{path}:{line}: {m.group(0)}"])  # fmt: skip
    return Gate("validation", False, "no validation split: no val/eval key in the config and none built by the script; hold one out before a long run")  # fmt: skip


def preflight(config: Path, script: Path | None, python: str, confirm: str | None, record_dir: Path) -> Preflight:  # fmt: skip
    data, raw = load_config(config)
    digest = hashlib.sha256(raw).hexdigest()[:12]
    items = flatten(data)
    src = None
    if script is not None:
        try:
            src = (script, script.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise InputError(f"--script {script}: cannot read it ({exc.strerror})") from None
    gates = [check_logging(items, src, python), check_validation(items, config.parent, src)]
    confirmed = confirm is not None and confirm.lower() == digest
    if confirm is not None and not confirmed:
        gates.append(Gate("config", False, f"--confirm {confirm} does not match the config's hash {digest}: it changed since it was shown; read it again"))  # fmt: skip
    elif confirmed:
        gates.append(Gate("config", True, f"confirmed (sha256 {digest})"))
    else:
        gates.append(Gate("config", False, f"not confirmed: read the config above, then rerun with --confirm {digest}"))  # fmt: skip
    echo = [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in items]
    res = Preflight(str(config), digest, confirmed, gates, echo)
    if res.ok:
        record_dir.mkdir(parents=True, exist_ok=True)
        out = record_dir / f"{config.stem}-{digest}.json"
        out.write_text(json.dumps({"config": str(config.resolve()), "sha256": digest,
                                   "confirmed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "gates": [vars(g) for g in gates]}, indent=2) + "\n")  # fmt: skip
        res.record = str(out)
    return res


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n", 1)[1])
    p.add_argument("config", type=Path, help="the run's config (YAML or JSON)")
    p.add_argument("--script", type=Path, help="the training script (scanned for loggers and a validation set)")  # fmt: skip
    p.add_argument("--python", default=sys.executable, help="the training interpreter (default: this one)")  # fmt: skip
    p.add_argument("--confirm", metavar="HASH", help="the config hash shown by a previous call: confirms it")  # fmt: skip
    p.add_argument("--record-dir", type=Path, default=Path(".labcoat/preflight"), help="where a confirmation is recorded")  # fmt: skip
    add_format_flag(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    res = preflight(args.config, args.script, args.python, args.confirm, args.record_dir)
    if args.format == "json":
        print_json({**vars(res), "ok": res.ok})
    else:
        print(f"config {res.config} (sha256 {res.sha256}):")
        print(render_table(("key", "value"), res.echo))
        print()
        print(render_table(("gate", "result", "detail"),
                           [(g.name, "PASS" if g.ok else "FAIL", g.detail) for g in res.gates]))  # fmt: skip
        for g in res.gates:
            for e in g.evidence:
                print(f"  {g.name}: {e}")
        if res.record:
            print(f"recorded: {res.record}")
    return EXIT_OK if res.ok else EXIT_FAILED


if __name__ == "__main__":
    run(main, PROG)
