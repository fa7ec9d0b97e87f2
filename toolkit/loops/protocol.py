"""``autoresearch-protocol.md``: readable markdown with a YAML front-matter block.

Front matter (between the first two ``---`` lines)::

    name: poly-fit                 # run name: [A-Za-z0-9._-]+
    question: Which polynomial fits the data best?
    metric:
      name: val_mse
      direction: minimize          # minimize | maximize
      target: 0.01                 # optional: stop when best reaches it
      baseline: 1.3                # optional: the value the baseline is expected to give
      regex: 'val_mse=(\\S+)'      # exactly one of regex (group 1, last match) / json_key
    fixed_files: [eval.py, data/*.csv]       # globs; must include the eval script
    variable_files: [model.py]               # globs the researcher may edit / add / delete
    allowed_range: "degree 1..8; no new dependencies"   # free text shown in the brief
    train_command: python train.py           # optional
    eval_command: python eval.py
    time_limit_s: 300                        # train + eval, per round
    baseline_time_limit_s: 60                # optional: fast baseline; init fails when slower
    max_epochs: 2                            # optional: epoch limit; LABCOAT_MAX_EPOCHS is exported
                                             # and a round whose output shows more epochs fails
    epoch_regex: 'epoch[= ](\\d+)'           # optional: how epochs appear in the output
    heartbeat_s: 30                          # progress line + heartbeat.json every N s (0: off)
    stall_s: 120                             # optional: no new output for N s -> killed, failed
    max_rounds: 20
    plateau: {rounds: 5, min_delta: 0.0}     # stop after 5 rounds without improvement > min_delta
    workspace: {branch: autoresearch/poly-fit}   # or {worktree: ../poly-wt, branch: ...}
    brief_experiences: 5                     # how many past rounds the brief shows

:func:`parse_protocol` checks the schema; :func:`check_against_repo` checks it against a
checkout (globs match files, eval command exists, eval script is Fixed, Fixed and Variable
disjoint). Both report every problem, each naming its field.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.cli import read_text
from toolkit.errors import InputError
from toolkit.loops.globs import filter_paths, matches

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SCRIPT_SUFFIXES = (".py", ".sh", ".bash", ".jl", ".R", ".rb", ".pl")


class ProtocolError(InputError):
    """The protocol has problems; ``problems`` lists each one, naming its field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # "minimize" | "maximize"
    regex: str | None = None
    json_key: str | None = None
    target: float | None = None
    baseline: float | None = None

    def better(self, a: float, b: float, min_delta: float = 0.0) -> bool:
        """True when ``a`` beats ``b`` by more than ``min_delta``."""
        return a < b - min_delta if self.direction == "minimize" else a > b + min_delta

    def reached(self, value: float | None) -> bool:
        if self.target is None or value is None:
            return False
        return value <= self.target if self.direction == "minimize" else value >= self.target


@dataclass(frozen=True)
class Plateau:
    rounds: int = 5
    min_delta: float = 0.0


@dataclass(frozen=True)
class Protocol:
    name: str
    question: str
    metric: Metric
    fixed_files: list[str]
    variable_files: list[str]
    eval_command: str
    time_limit_s: float
    max_rounds: int
    train_command: str | None = None
    allowed_range: str | None = None
    plateau: Plateau = field(default_factory=Plateau)
    branch: str = ""
    worktree: str | None = None
    brief_experiences: int = 5
    baseline_time_limit_s: float | None = None
    max_epochs: int | None = None
    epoch_regex: str | None = None
    heartbeat_s: float = 30.0
    stall_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Protocol:
        data = dict(data)
        data["metric"] = Metric(**data["metric"])
        data["plateau"] = Plateau(**data["plateau"])
        return Protocol(**data)


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ProtocolError(source, ["no YAML front matter: the file must start with a '---' line"])
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise ProtocolError(source, ["front matter is not closed: expected a second '---' line"])
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        raise ProtocolError(source, [f"front matter is not valid YAML{where}: {exc}"]) from None
    if not isinstance(data, dict):
        raise ProtocolError(source, ["front matter must be a YAML mapping of fields"])
    return data, "\n".join(lines[end + 1 :])


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _globs(data: dict[str, Any], key: str, problems: list[str]) -> list[str]:
    value = data.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        problems.append(f"field '{key}': expected a non-empty list of globs")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"field '{key}[{i}]': expected a glob string, got {item!r}")
        elif item.startswith("/") or ".." in item.split("/"):
            problems.append(f"field '{key}[{i}]': {item!r} must be relative to the repo root")
        else:
            out.append(item.strip())
    return out


def _optional_seconds(data: dict[str, Any], key: str, problems: list[str]) -> float | None:
    if data.get(key) is None:
        return None
    value = _num(data.get(key))
    if value is None or value <= 0:
        problems.append(f"field '{key}': expected seconds > 0, got {data.get(key)!r}")
        return None
    return value


def parse_protocol(path: Path) -> Protocol:
    """Read and schema-check a protocol file; raises :class:`ProtocolError` listing problems."""
    source = str(path)
    text = read_text(path, "protocol")
    data, _ = split_front_matter(text, source)
    return protocol_from_mapping(data, source)


def protocol_from_mapping(data: dict[str, Any], source: str = "protocol") -> Protocol:
    problems: list[str] = []
    known = {
        "name", "question", "metric", "fixed_files", "variable_files", "allowed_range",
        "train_command", "eval_command", "time_limit_s", "max_rounds", "plateau", "workspace",
        "brief_experiences", "baseline_time_limit_s", "max_epochs", "epoch_regex", "heartbeat_s",
        "stall_s",
    }  # fmt: skip
    for key in sorted(set(data) - known):
        problems.append(f"field '{key}': unknown field (known: {', '.join(sorted(known))})")

    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(
            f"field 'name': expected a run name of letters, digits, '.', '_', '-', got {name!r}"
        )
        name = "run"
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        problems.append("field 'question': expected the research question as text")
        question = ""

    metric = None
    m = data.get("metric")
    if not isinstance(m, dict):
        problems.append(
            "field 'metric': expected a mapping with name, direction and regex or json_key"
        )
    else:
        for key in sorted(
            set(m) - {"name", "direction", "target", "baseline", "regex", "json_key"}
        ):
            problems.append(f"field 'metric.{key}': unknown field")
        mname = m.get("name")
        if not isinstance(mname, str) or not mname:
            problems.append("field 'metric.name': expected the metric's name")
        direction = m.get("direction")
        if direction not in ("minimize", "maximize"):
            problems.append(
                f"field 'metric.direction': expected 'minimize' or 'maximize', got {direction!r}"
            )
        regex, json_key = m.get("regex"), m.get("json_key")
        if (regex is None) == (json_key is None):
            problems.append(
                "field 'metric': give exactly one of 'regex' or 'json_key' to read the metric from the eval output"
            )
        if regex is not None:
            try:
                re.compile(str(regex))
            except re.error as exc:
                problems.append(f"field 'metric.regex': not a valid regular expression ({exc})")
        if json_key is not None and (not isinstance(json_key, str) or not json_key):
            problems.append(
                "field 'metric.json_key': expected a key (dots for nesting: 'eval.loss')"
            )
        nums = {}
        for key in ("target", "baseline"):
            if m.get(key) is not None and _num(m.get(key)) is None:
                problems.append(
                    f"field 'metric.{key}': expected a finite number, got {m.get(key)!r}"
                )
            nums[key] = _num(m.get(key))
        metric = Metric(
            name=str(mname), direction=str(direction),
            regex=None if regex is None else str(regex),
            json_key=None if json_key is None else str(json_key), **nums,
        )  # fmt: skip

    fixed = _globs(data, "fixed_files", problems)
    variable = _globs(data, "variable_files", problems)
    for g in sorted(set(fixed) & set(variable)):
        problems.append(f"fields 'fixed_files' and 'variable_files': glob {g!r} is in both")

    eval_command = data.get("eval_command")
    if not isinstance(eval_command, str) or not eval_command.strip():
        problems.append("field 'eval_command': expected the command that prints the metric")
        eval_command = ""
    train_command = data.get("train_command")
    if train_command is not None and (
        not isinstance(train_command, str) or not train_command.strip()
    ):
        problems.append("field 'train_command': expected a command or leave the field out")
        train_command = None
    allowed = data.get("allowed_range")
    if allowed is not None and not isinstance(allowed, str):
        problems.append(
            "field 'allowed_range': expected text describing what the Variable files may vary"
        )
        allowed = None

    limit = _num(data.get("time_limit_s"))
    if limit is None or limit <= 0:
        problems.append(
            f"field 'time_limit_s': expected seconds > 0, got {data.get('time_limit_s')!r}"
        )
        limit = 1.0
    max_rounds = data.get("max_rounds")
    if not isinstance(max_rounds, int) or isinstance(max_rounds, bool) or max_rounds < 1:
        problems.append(f"field 'max_rounds': expected an integer >= 1, got {max_rounds!r}")
        max_rounds = 1
    brief_n = data.get("brief_experiences", 5)
    if not isinstance(brief_n, int) or isinstance(brief_n, bool) or brief_n < 0:
        problems.append(f"field 'brief_experiences': expected an integer >= 0, got {brief_n!r}")
        brief_n = 5

    baseline_limit = _optional_seconds(data, "baseline_time_limit_s", problems)
    if baseline_limit is not None and baseline_limit > limit:
        problems.append(
            f"field 'baseline_time_limit_s': {baseline_limit:g} s is above time_limit_s {limit:g} s; a fast baseline must fit the round limit"
        )
    stall = _optional_seconds(data, "stall_s", problems)
    heartbeat = data.get("heartbeat_s", 30.0)
    if _num(heartbeat) is None or heartbeat < 0:
        problems.append(f"field 'heartbeat_s': expected seconds >= 0 (0: off), got {heartbeat!r}")
        heartbeat = 30.0
    max_epochs = data.get("max_epochs")
    if max_epochs is not None and (
        not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < 1
    ):
        problems.append(f"field 'max_epochs': expected an integer >= 1, got {max_epochs!r}")
        max_epochs = None
    epoch_regex = data.get("epoch_regex")
    if epoch_regex is not None:
        try:
            if re.compile(str(epoch_regex)).groups < 1:
                problems.append("field 'epoch_regex': needs a group capturing the epoch number")
        except re.error as exc:
            problems.append(f"field 'epoch_regex': not a valid regular expression ({exc})")

    plateau = Plateau()
    p = data.get("plateau")
    if p is not None:
        if not isinstance(p, dict):
            problems.append("field 'plateau': expected {rounds: N, min_delta: X}")
        else:
            rounds, delta = p.get("rounds", 5), p.get("min_delta", 0.0)
            for key in sorted(set(p) - {"rounds", "min_delta"}):
                problems.append(f"field 'plateau.{key}': unknown field")
            if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
                problems.append(f"field 'plateau.rounds': expected an integer >= 1, got {rounds!r}")
                rounds = 5
            if _num(delta) is None or delta < 0:
                problems.append(f"field 'plateau.min_delta': expected a number >= 0, got {delta!r}")
                delta = 0.0
            plateau = Plateau(rounds, float(delta))

    branch, worktree = f"autoresearch/{name}", None
    w = data.get("workspace")
    if w is not None:
        if not isinstance(w, dict) or not set(w) <= {"branch", "worktree"}:
            problems.append(
                "field 'workspace': expected {branch: NAME} and optionally worktree: PATH"
            )
        else:
            b = w.get("branch", branch)
            if not isinstance(b, str) or not b or " " in b or b.startswith("-"):
                problems.append(f"field 'workspace.branch': expected a git branch name, got {b!r}")
            else:
                branch = b
            wt = w.get("worktree")
            if wt is not None and (not isinstance(wt, str) or not wt):
                problems.append("field 'workspace.worktree': expected a directory path")
            worktree = wt

    if problems or metric is None:
        raise ProtocolError(source, problems)
    return Protocol(
        name=name, question=question.strip(), metric=metric, fixed_files=fixed,
        variable_files=variable, eval_command=eval_command.strip(), time_limit_s=float(limit),
        max_rounds=max_rounds, train_command=train_command, allowed_range=allowed,
        plateau=plateau, branch=branch, worktree=worktree, brief_experiences=brief_n,
        baseline_time_limit_s=baseline_limit, max_epochs=max_epochs,
        epoch_regex=None if epoch_regex is None else str(epoch_regex),
        heartbeat_s=float(heartbeat), stall_s=stall,
    )  # fmt: skip


def command_problems(
    command: str, key: str, root: Path, files: list[str], fixed: list[str]
) -> list[str]:
    problems = []
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return [f"field '{key}': cannot split the command ({exc})"]
    if not argv:
        return [f"field '{key}': empty command"]
    exe = argv[0]
    if "/" in exe:
        if not (root / exe).exists() and not Path(exe).exists():
            problems.append(f"field '{key}': {exe} does not exist")
    elif shutil.which(exe) is None:
        problems.append(f"field '{key}': {exe!r} is not on PATH")
    scripts = [a for a in argv if a.endswith(SCRIPT_SUFFIXES) and not a.startswith("-")]
    for script in scripts:
        rel = Path(script).as_posix().removeprefix("./")
        if not (root / rel).is_file():
            problems.append(f"field '{key}': script {script} does not exist in the repo")
        elif key == "eval_command" and not matches(rel, fixed):
            problems.append(
                f"field 'fixed_files': the eval script {rel} must be Fixed (no fixed_files glob matches it)"
            )
    return problems


def check_against_repo(protocol: Protocol, root: Path, files: list[str]) -> list[str]:
    """Problems with ``protocol`` in the checkout at ``root`` (``files``: its paths)."""
    problems = []
    for key, globs in (
        ("fixed_files", protocol.fixed_files),
        ("variable_files", protocol.variable_files),
    ):
        for i, g in enumerate(globs):
            if not filter_paths(files, g):
                problems.append(f"field '{key}[{i}]': glob {g!r} matches no file in {root}")
    both = [
        f for f in files if matches(f, protocol.fixed_files) and matches(f, protocol.variable_files)
    ]
    if both:
        shown = ", ".join(both[:5]) + (" ..." if len(both) > 5 else "")
        problems.append(
            f"fields 'fixed_files' and 'variable_files' overlap: {shown} match both; they must be disjoint"
        )
    problems += command_problems(
        protocol.eval_command, "eval_command", root, files, protocol.fixed_files
    )
    if protocol.train_command:
        problems += command_problems(
            protocol.train_command, "train_command", root, files, protocol.fixed_files
        )
    return problems
