"""``iterate run``: the toolkit runs the round's commands, reads the metrics, then judges.

The ``run`` section of ``review_criteria.yaml``::

    run:
      commands:                         # in order, in the repo root, sharing one time budget
        - {name: train, command: "python train.py"}
        - {name: eval, command: "python eval.py", timeout_s: 120}   # optional own cap
      time_budget_s: 900                # all commands together (seconds)
      heartbeat_s: 30                   # progress line to stderr + heartbeat.json (0: off)
      stall_s: 300                      # optional: no new output for N s -> killed
      metrics_files: [out/metrics.json, out/train.jsonl]
      max_epochs: 3                     # optional epoch limit (LABCOAT_MAX_EPOCHS exported)
      baseline_time_limit_s: 120        # optional: the first run (no baseline yet) must be this fast

``metrics_files``: a ``.json`` file is an object of metric name -> number; any other file or
directory is read with :func:`toolkit.logs.read_log` (JSONL, CSV, HF, TensorBoard, MLflow,
W&B ...) and each metric's last finite value is its value, its whole curve what
``stability.no_nan`` checks. A file not written during this run counts as missing, so a
stale file from an earlier round is never judged. The agent never writes the metrics.

The first run with ``--no-git`` and no baseline yet is the baseline: its metrics are recorded
as the ones the next run is compared with (nothing in git changes).

Outcomes (``run.status`` in the JSON; exit code 4, changes rolled back): ``crashed`` (a command
exited non-zero), ``timed_out`` (budget or a command's cap spent; process group killed),
``stalled``, ``metrics_missing``, ``epoch_limit``. Otherwise the criteria are judged as in
``iterate judge`` (exit 0 / 3 / 5). Files the commands created are outputs: never committed,
never removed. Logs, heartbeat and ``run.json`` are in ``.labcoat/iterate/<name>/runs/<id>/``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import InputError
from toolkit.loops import gitops, records
from toolkit.loops.criteria import (
    CriterionResult,
    IterateResult,
    judge_locked,
    load_criteria,
    load_metrics,
    recover_iteration,
)
from toolkit.loops.heartbeat import (
    Heartbeat,
    epoch_violation,
    epochs_in_values,
    epochs_seen,
    limit_env,
)
from toolkit.loops.judge import run_limited


@dataclass
class Command:
    name: str
    command: str
    timeout_s: float | None = None


@dataclass
class RunSpec:
    commands: list[Command]
    time_budget_s: float
    metrics_files: list[str]
    heartbeat_s: float = 30.0
    stall_s: float | None = None
    max_epochs: int | None = None
    baseline_time_limit_s: float | None = None


@dataclass
class CommandRecord:
    name: str
    command: str
    status: str  # ok | crashed | timed_out | stalled | skipped
    duration_s: float
    exit_code: int | None
    log: str
    reason: str = ""


@dataclass
class Ran:
    """What the toolkit measured: per-command records, metrics read, curves, created files."""

    status: str  # ok | crashed | timed_out | stalled | metrics_missing | epoch_limit
    log_dir: Path
    commands: list[CommandRecord] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # untracked files the commands created
    rewritten: list[str] = field(default_factory=list)  # untracked files they overwrote
    failures: list[CriterionResult] = field(default_factory=list)
    epochs: int | None = None
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status, "log_dir": str(self.log_dir), "duration_s": round(self.duration_s, 3),
            "epochs": self.epochs, "commands": [vars(c) for c in self.commands],
            "metrics": self.metrics, "outputs": self.outputs, "rewritten": self.rewritten,
        }  # fmt: skip


def _seconds(run: dict[str, Any], key: str, where: str, required: bool = False) -> float | None:
    value = run.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{where}: field 'run.{key}' expects seconds > 0, got {value!r}")
    return float(value)


def parse_run_spec(crit: dict[str, Any], where: str) -> RunSpec:
    """The ``run`` section, every field checked and named in the error."""
    run = crit.get("run")
    if not isinstance(run, dict):
        raise InputError(
            f"{where}: 'iterate run' needs a 'run' section with commands, time_budget_s and metrics_files"
        )
    known = {"commands", "time_budget_s", "heartbeat_s", "stall_s", "metrics_files",
             "max_epochs", "baseline_time_limit_s"}  # fmt: skip
    unknown = sorted(set(run) - known)
    if unknown:
        raise InputError(f"{where}: unknown field(s) run.{', run.'.join(unknown)} (known: {', '.join(sorted(known))})")  # fmt: skip
    items = run.get("commands")
    if not isinstance(items, list) or not items:
        raise InputError(f"{where}: field 'run.commands' expects a list of {{name, command}}")
    commands = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": f"command-{i}", "command": item}
        if not isinstance(item, dict) or not isinstance(item.get("command"), str):
            raise InputError(f"{where}: field 'run.commands[{i}].command' expects a command string")
        name = str(item.get("name") or f"command-{i}")
        cap = _seconds(item, "timeout_s", where) if "timeout_s" in item else None
        commands.append(Command(name, item["command"], cap))
    files = run.get("metrics_files")
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise InputError(
            f"{where}: field 'run.metrics_files' expects the files the commands write metrics to"
        )
    heartbeat = run.get("heartbeat_s", 30.0)
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float) or heartbeat < 0:
        raise InputError(f"{where}: field 'run.heartbeat_s' expects seconds >= 0, got {heartbeat!r}")  # fmt: skip
    epochs = run.get("max_epochs")
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise InputError(f"{where}: field 'run.max_epochs' expects an integer >= 1, got {epochs!r}")  # fmt: skip
    return RunSpec(
        commands=commands, time_budget_s=_seconds(run, "time_budget_s", where, required=True) or 0.0,
        metrics_files=files, heartbeat_s=float(heartbeat), stall_s=_seconds(run, "stall_s", where),
        max_epochs=epochs, baseline_time_limit_s=_seconds(run, "baseline_time_limit_s", where),
    )  # fmt: skip


def _written_since(path: Path, t0_ns: int) -> bool:
    """True when ``path`` (or, for a directory, a file under it) was written at/after ``t0_ns``."""
    if path.is_file():
        return path.stat().st_mtime_ns >= t0_ns
    if path.is_dir():
        return any(p.stat().st_mtime_ns >= t0_ns for p in path.rglob("*") if p.is_file())
    return False


def read_metrics_file(path: Path) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Metrics (name -> last value) and curves (name -> values) from one file the criteria name."""
    if path.is_file() and path.suffix == ".json" and path.name != "trainer_state.json":
        return load_metrics(path, "run.metrics_files"), {}
    from toolkit.logs.readers import read_log  # the logs area is only needed for log files

    run = read_log(path)
    metrics, series = {}, {}
    for name, s in run.series.items():
        values = [float(v) for v in s.values]
        series[name] = values
        finite = [v for v in values if math.isfinite(v)]
        metrics[name] = finite[-1] if finite else values[-1]
    return metrics, series


def execute(spec: RunSpec, root: Path, log_dir: Path, budget_s: float) -> Ran:
    """Run the commands in ``root`` within ``budget_s`` seconds; read the metrics files."""
    env = limit_env(spec.max_epochs)
    t0, t0_ns = time.monotonic(), time.time_ns()
    ran = Ran("ok", log_dir)
    outputs = []
    for cmd in spec.commands:
        log = log_dir / f"{cmd.name}.log"
        left = budget_s - (time.monotonic() - t0)
        if ran.status != "ok" or left <= 0:
            if ran.status == "ok":
                ran.status = "timed_out"
                ran.failures.append(CriterionResult(f"run:{cmd.name}", "run", "fail",
                                                    message=f"time budget {budget_s:g} s spent before it started"))  # fmt: skip
            ran.commands.append(
                CommandRecord(cmd.name, cmd.command, "skipped", 0.0, None, str(log))
            )
            continue
        limit = left if cmd.timeout_s is None else min(left, cmd.timeout_s)
        hb = Heartbeat(spec.heartbeat_s, spec.stall_s, cmd.name)
        res = run_limited(cmd.command, root, log, limit, heartbeat=hb, env=env)
        status = ("ok" if res.ok else "timed_out" if res.timed_out
                  else "stalled" if res.stalled else "crashed")  # fmt: skip
        ran.commands.append(CommandRecord(cmd.name, cmd.command, status, round(res.duration_s, 3),
                                          res.exit_code, str(log), res.reason))  # fmt: skip
        outputs.append(res.output)
        if not res.ok:
            ran.status = status
            ran.failures.append(
                CriterionResult(f"run:{cmd.name}", "run", "fail", message=res.reason)
            )
    ran.duration_s = time.monotonic() - t0
    if ran.status != "ok":
        return ran
    for rel in spec.metrics_files:
        path = root / rel
        if not path.exists():
            why = f"{rel} does not exist after the run"
        elif not _written_since(path, t0_ns):
            why = f"{rel} was not written by this run (older than its start): stale metrics are never judged"
        else:
            try:
                metrics, series = read_metrics_file(path)
            except InputError as exc:
                why = f"cannot read: {exc}"
            else:
                ran.metrics.update(metrics)
                ran.series.update(series)
                continue
        ran.status = "metrics_missing"
        ran.failures.append(CriterionResult(f"metrics:{rel}", "run", "fail", message=why))
    if ran.status != "ok":
        return ran
    values = list(ran.series.get("epoch", []))
    epoch = ran.metrics.get("epoch")
    if not values and isinstance(epoch, int | float) and not isinstance(epoch, bool):
        values = [float(epoch)]
    ran.epochs = epochs_in_values(values) if values else epochs_seen("\n".join(outputs))
    over = epoch_violation(ran.epochs, spec.max_epochs)
    if over:
        ran.status = "epoch_limit"
        ran.failures.append(CriterionResult("run:epochs", "run", "fail", value=ran.epochs,
                                            threshold=spec.max_epochs, message=over))  # fmt: skip
    return ran


def run_iteration(
    criteria_path: Path, baseline_path: Path | None, repo_path: Path, message: str = "",
    use_git: bool = True,
) -> IterateResult:  # fmt: skip
    """Run the criteria's commands, read their metrics, judge, then commit or roll back."""
    crit = load_criteria(criteria_path)
    spec = parse_run_spec(crit, str(criteria_path))
    repo = gitops.open_repo(repo_path)
    root = gitops.root_of(repo)
    name = str(crit.get("name") or "default")
    run_dir = records.area_dir(repo, "iterate") / name
    run_dir.mkdir(parents=True, exist_ok=True)
    with records.run_lock(run_dir):
        recovered = recover_iteration(repo, run_dir) if use_git else None
        first = baseline_path is None and not (run_dir / "accepted_metrics.json").exists()
        budget = spec.time_budget_s
        if first and spec.baseline_time_limit_s is not None:
            budget = min(budget, spec.baseline_time_limit_s)
        before = set(gitops.untracked(gitops.status(repo)))
        sigs = gitops.signatures(root, sorted(before))
        log_dir = run_dir / "runs" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        n = 1
        while log_dir.exists():
            log_dir = log_dir.with_name(f"{log_dir.name.split('.')[0]}.{n}")
            n += 1
        ran = execute(spec, root, log_dir, budget)
        ran.outputs = sorted(set(gitops.untracked(gitops.status(repo))) - before)
        now = gitops.signatures(root, sorted(before))
        ran.rewritten = sorted(p for p in before if now[p] != sigs[p])
        if first and ran.status == "timed_out" and budget < spec.time_budget_s:
            ran.failures.append(CriterionResult("run:fast-baseline", "run", "fail",
                                                message=f"baseline run not done within baseline_time_limit_s {budget:g} s; make it faster (fewer steps, a data subset)"))  # fmt: skip
        records.write_json(log_dir / "run.json", ran.summary())
        out = judge_locked(
            crit, ran.metrics, baseline_path, repo, name, run_dir, message, use_git, ran
        )
        if first and not use_git and ran.status == "ok" and out.verdict != "rollback":
            numbers = {k: v for k, v in ran.metrics.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}  # fmt: skip
            records.write_json(run_dir / "accepted_metrics.json", numbers)
            out.notes.append(f"baseline recorded: the next run is compared with these {len(numbers)} metrics")  # fmt: skip
        if recovered:
            out.notes.insert(0, recovered)
        return out
