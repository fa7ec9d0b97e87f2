"""One autoresearch round: compliance, the fixed evaluation under a time limit, the verdict,
the git action and the records.

Round outcomes and ``judge`` exit codes:

====  ==============  =====================================================================
0     improved        metric beats the best by more than ``plateau.min_delta``: committed
3     not_improved    metric read but no better: rolled back
4     failed          compliance broken, train/eval crashed or timed out, metric missing or
                      non-numeric: rolled back
2     (usage)         bad arguments, no run, max rounds already reached, HEAD moved elsewhere
====  ==============  =====================================================================

Every step is written to the round journal (:mod:`toolkit.loops.recovery`) before it acts.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from toolkit.errors import InputError
from toolkit.loops import gitops, records
from toolkit.loops.heartbeat import (
    EPOCH_RE,
    Heartbeat,
    epoch_violation,
    epochs_seen,
    limit_env,
    watch,
)
from toolkit.loops.protocol import Metric, Protocol

EXIT_IMPROVED = 0
EXIT_NOT_IMPROVED = 3
EXIT_FAILED = 4
OUTCOME_EXIT = {"improved": EXIT_IMPROVED, "not_improved": EXIT_NOT_IMPROVED, "failed": EXIT_FAILED}
KILL_GRACE_S = 2.0


# ----------------------------------------------------------------------------- evaluation


@dataclass
class CommandResult:
    ok: bool
    output: str
    duration_s: float
    reason: str = ""
    timed_out: bool = False
    exit_code: int | None = None
    stalled: bool = False


def run_limited(
    command: str, cwd: Path, log: Path, timeout_s: float, on_start: Any = None,
    heartbeat: Heartbeat | None = None, env: dict[str, str] | None = None,
) -> CommandResult:  # fmt: skip
    """Run ``command`` in a new process group; on time-out or stall kill the whole group.

    ``heartbeat`` (see :mod:`toolkit.loops.heartbeat`) adds progress lines, ``heartbeat.json``
    beside ``log`` and stall detection; ``env`` replaces the environment.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            command, shell=True, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )  # fmt: skip
        if on_start is not None:
            on_start(proc.pid)
        try:
            watched = watch(proc, log, max(0.01, timeout_s), heartbeat)
            if watched.code is None:
                kill_group(proc.pid, proc=proc)
            code = proc.wait() if watched.code is None else watched.code
        except BaseException:  # Ctrl-C or an error here: never leave the group running
            kill_group(proc.pid, proc=proc)
            raise
        # the group may have children left even after a normal exit: they must not outlive the round
        kill_group(proc.pid, grace_s=0.0)
    output = log.read_text(encoding="utf-8", errors="replace")
    took = time.monotonic() - t0
    if watched.timed_out:
        return CommandResult(
            False, output, took, f"timed out after {timeout_s:.3g} s; process group killed", True
        )
    if watched.stalled:
        stall = heartbeat.stall_s if heartbeat else 0.0
        return CommandResult(False, output, took,
                             f"stalled: no new output for {stall:.3g} s; process group killed",
                             stalled=True)  # fmt: skip
    if code != 0:
        tail = output.strip().splitlines()[-1:] or ["no output"]
        return CommandResult(
            False, output, took, f"exited with code {code}: {tail[0][:200]}", exit_code=code
        )
    return CommandResult(True, output, took, exit_code=0)


def kill_group(
    pgid: int, grace_s: float = KILL_GRACE_S, proc: subprocess.Popen | None = None
) -> bool:
    """SIGTERM the process group, then SIGKILL after ``grace_s``; True if it existed.

    ``proc`` (the group leader, when it is our child) is reaped while waiting, so its zombie
    does not keep the group looking alive.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return True


def process_identity(pid: int) -> dict[str, Any] | None:
    """Boot id and start time (clock ticks) of ``pid`` on Linux; ``None`` elsewhere.

    Recovery kills a leftover process group only when this still matches, so a reused pid
    (after a reboot, or much later) is never signalled.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return {"boot_id": boot, "start_ticks": int(fields[19])}


def group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, start ticks) of every live, non-zombie process in group ``pgid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append((int(entry.name), int(fields[19])))
    return out


def read_metric(output: str, metric: Metric) -> tuple[float | None, str]:
    """The metric from the eval output (last match / last JSON line with the key), or a reason."""
    raw: Any = None
    if metric.regex is not None:
        found = list(re.finditer(metric.regex, output, re.M))
        if not found:
            return (
                None,
                f"metric {metric.name!r}: regex {metric.regex!r} matched nothing in the eval output",
            )
        m = found[-1]
        raw = m.group(1) if m.re.groups else m.group(0)
    else:
        keys = (metric.json_key or "").split(".")
        for line in reversed(output.splitlines()):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj: Any = json.loads(line)
            except json.JSONDecodeError:
                continue
            for k in keys:
                obj = obj.get(k) if isinstance(obj, dict) else None
            if obj is not None:
                raw = obj
                break
        if raw is None:
            return (
                None,
                f"metric {metric.name!r}: no JSON line in the eval output has key {metric.json_key!r}",
            )
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        return None, f"metric {metric.name!r}: {str(raw)[:80]!r} is not a number"
    if not math.isfinite(value):
        return None, f"metric {metric.name!r}: value is {raw!r}, not a finite number"
    return value, ""


@dataclass
class Evaluation:
    metric: float | None
    reason: str  # empty when the metric was read
    duration_s: float
    timed_out: bool = False


def evaluate(
    protocol: Protocol, workdir: Path, log_dir: Path, on_start: Any = None,
    time_limit_s: float | None = None,
) -> Evaluation:  # fmt: skip
    """Train (if any) then eval, both inside one ``time_limit_s`` budget (default the
    protocol's), with the protocol's heartbeat, stall limit and epoch limit."""
    limit = protocol.time_limit_s if time_limit_s is None else time_limit_s
    env = limit_env(protocol.max_epochs)
    t0 = time.monotonic()
    outputs = []
    for label, command in (("train", protocol.train_command), ("eval", protocol.eval_command)):
        if not command:
            continue
        left = limit - (time.monotonic() - t0)
        if left <= 0:
            return Evaluation(None, "train used the whole time limit", time.monotonic() - t0, True)
        hb = Heartbeat(protocol.heartbeat_s, protocol.stall_s, label)
        res = run_limited(command, workdir, log_dir / f"{label}.log", left, on_start, hb, env)
        if not res.ok:
            return Evaluation(None, f"{label}: {res.reason}", time.monotonic() - t0, res.timed_out)
        outputs.append(res.output)
    seen = epochs_seen("\n".join(outputs), protocol.epoch_regex or EPOCH_RE)
    over = epoch_violation(seen, protocol.max_epochs)
    if over:
        return Evaluation(None, over, time.monotonic() - t0)
    value, why = read_metric(outputs[-1], protocol.metric)
    return Evaluation(value, why, time.monotonic() - t0)


# ----------------------------------------------------------------------------- run context


@dataclass
class Run:
    run_dir: Path
    state: dict[str, Any]
    protocol: Protocol
    repo: git.Repo  # the run's checkout (the worktree for worktree runs)

    @property
    def journal(self) -> Path:
        return self.run_dir / "round.json"

    @property
    def workdir(self) -> Path:
        return Path(self.state["workdir"])

    def save(self) -> None:
        records.write_json(self.run_dir / "state.json", self.state)


def load_run(repo_path: Path, name: str | None) -> Run:
    repo = gitops.open_repo(repo_path)
    run_dir = records.find_run(repo, name)
    state = records.read_json(run_dir / "state.json")
    protocol = Protocol.from_dict(state["protocol"])
    return Run(run_dir, state, protocol, gitops.open_repo(state["workdir"]))


def termination(run: Run) -> str | None:
    s, p = run.state, run.protocol
    if p.metric.reached(s["best"]["metric"]):
        return f"target reached: best {s['best']['metric']:.6g} vs target {p.metric.target:g}"
    if s["rounds"] >= p.max_rounds:
        return f"max rounds reached ({p.max_rounds})"
    if s["since_improvement"] >= p.plateau.rounds:
        return f"plateau: {s['since_improvement']} rounds without improvement > {p.plateau.min_delta:g}"
    return None


# ----------------------------------------------------------------------------- the round


@dataclass
class RoundResult:
    round: int
    outcome: str  # improved | not_improved | failed
    metric: float | None
    best: float | None
    best_commit: str
    commit: str | None  # the new commit when improved
    reason: str
    violations: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    rollback: dict[str, Any] | None = None
    stop: str | None = None
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return OUTCOME_EXIT[self.outcome]


def user_files(state: dict[str, Any], rnd: int) -> dict[str, list[int] | None]:
    """The user's untracked files for round ``rnd`` with their recorded ``[size, mtime_ns]``:
    those at the end of the previous round (or init), updated by this round's first brief."""
    known = {p: None for p in state["preexisting"]}
    known.update(state.get("user_files") or {})
    brief = state.get("brief") or {}
    if brief.get("round") == rnd:
        known.update(brief["untracked"])
    return known


def write_journal(run: Run, journal: dict[str, Any]) -> None:
    records.write_json(run.journal, journal)


def judge_round(run: Run, strategy: str, insight: str, hook: Any = None) -> RoundResult:
    """Run one round end to end. ``hook(step)`` is called between steps (tests kill there)."""
    hook = hook or (lambda step: None)
    s, p, repo = run.state, run.protocol, run.repo
    if s["rounds"] >= p.max_rounds:
        raise InputError(
            f"run {p.name!r} is finished: max_rounds {p.max_rounds} reached; see 'status'"
        )
    branch = gitops.current_branch(repo)
    if branch != p.branch:
        raise InputError(
            f"{run.workdir} is on branch {branch!r}, not the run branch {p.branch!r}; check it out first"
        )
    base = s["best"]["commit"]
    notes = []
    head = gitops.head_sha(repo)
    if head != base:
        if not gitops.is_ancestor(repo, base, head):
            raise InputError(
                f"HEAD {head[:12]} does not descend from the run's best commit {base[:12]}; the branch was moved by hand"
            )
        gitops.soft_reset(repo, base)  # stray researcher commits become the round's changes
        notes.append(
            f"HEAD had commits past {base[:12]}; folded into this round's changes (soft reset)"
        )
    rnd = s["rounds"] + 1
    user = user_files(s, rnd)
    preexisting = sorted(set(s["preexisting"]) | set(user))
    notes += gitops.user_file_changes(gitops.root_of(repo), user)
    comp = gitops.compliance(gitops.status(repo), set(preexisting), p.variable_files, p.fixed_files)
    journal: dict[str, Any] = {
        "state": "started", "round": rnd, "base": base, "strategy": strategy, "insight": insight,
        "changed": comp.paths, "violations": comp.violations, "notes": notes,
        "started_at": time.time(), "pgid": None, "hashes": gitops.hash_paths(repo, comp.paths),
        "preexisting": preexisting,
    }  # fmt: skip
    write_journal(run, journal)
    hook("started")

    if comp.violations:
        ev = Evaluation(None, "compliance: " + "; ".join(comp.violations), 0.0)
    else:

        def started(pid: int) -> None:
            journal["pgid"] = pid
            journal["process"] = process_identity(pid)
            write_journal(run, journal)

        ev = evaluate(p, run.workdir, run.run_dir / "logs" / f"round-{rnd:03d}", started)
    hook("evaluated")
    best = s["best"]["metric"]
    if ev.metric is None:
        outcome = "failed"
    elif p.metric.better(ev.metric, best, p.plateau.min_delta):
        outcome = "improved"
    else:
        outcome = "not_improved"
    reason = ev.reason or (
        f"{p.metric.name} {ev.metric:.6g} vs best {best:.6g} ({p.metric.direction})"
        if ev.metric is not None else ""
    )  # fmt: skip
    journal.update(state="evaluated", outcome=outcome, metric=ev.metric, reason=reason,
                   duration_s=ev.duration_s, pgid=None)  # fmt: skip
    write_journal(run, journal)
    hook("before_git")
    return finish_round(run, journal, hook)


def commit_message(run: Run, journal: dict[str, Any]) -> str:
    p = run.protocol
    subject = " ".join(journal["strategy"].split())[:72] or "no strategy given"
    return (
        f"autoresearch {p.name} round {journal['round']}: {p.metric.name}={journal['metric']:.6g}\n\n"
        f"strategy: {journal['strategy'].strip()}\ninsight: {journal['insight'].strip()}\n"
        f"previous best: {run.state['best']['metric']:.6g} ({journal['base'][:12]})\n\n"
        f"Labcoat-Run: {p.name}\nLabcoat-Round: {journal['round']}\nSummary: {subject}\n"
    )


def finish_round(run: Run, journal: dict[str, Any], hook: Any = None) -> RoundResult:
    """Git action then records, from a journal in state evaluated/committing/recorded.

    Each part is idempotent, so recovery calls this again after a crash at any point.
    """
    hook = hook or (lambda step: None)
    s, p, repo = run.state, run.protocol, run.repo
    rnd, outcome = journal["round"], journal["outcome"]
    trash = run.run_dir / "trash" / f"round-{rnd:03d}"
    if journal["state"] in ("evaluated", "committing"):
        journal["state"] = "committing"
        write_journal(run, journal)
        hook("committing")
        if outcome == "improved":
            head = gitops.head_sha(repo)
            if head != journal["base"] and f"Labcoat-Round: {rnd}\n" in repo.head.commit.message:
                sha = head  # the commit happened before the crash
            else:
                sha = gitops.commit_paths(repo, journal["changed"], commit_message(run, journal))
            hook("committed")
            leftover, snapshot = gitops.restore_tracked(repo, trash)  # tracked files train touched
            journal["commit"] = sha
            journal["snapshot"] = snapshot
            journal["rollback"] = {"restored_after_commit": leftover} if leftover else None
        else:
            users = set(journal.get("preexisting", s["preexisting"]))
            report = gitops.rollback(repo, users, p.variable_files, trash)
            journal["commit"] = None
            journal["rollback"] = {
                "restored": report.restored, "removed": report.removed,
                "unstaged": report.unstaged, "kept": report.kept, "trash": report.trash,
            }  # fmt: skip
            journal["snapshot"] = report.untracked_after
            hook("rolled_back")
        journal["state"] = "recorded_pending"
        write_journal(run, journal)
    record_round(run, journal)
    hook("recorded")
    journal["state"] = "recorded"
    write_journal(run, journal)
    run.journal.unlink(missing_ok=True)
    return RoundResult(
        round=rnd, outcome=outcome, metric=journal["metric"], best=s["best"]["metric"],
        best_commit=s["best"]["commit"], commit=journal.get("commit"), reason=journal["reason"],
        violations=journal["violations"], changed=journal["changed"],
        rollback=journal.get("rollback"), stop=termination(run), notes=journal.get("notes", []),
        duration_s=journal.get("duration_s", 0.0),
    )  # fmt: skip


def record_round(run: Run, journal: dict[str, Any]) -> None:
    """Append the round to results.tsv and experiences.md and update state.json (idempotent)."""
    s = run.state
    rnd, outcome, metric = journal["round"], journal["outcome"], journal["metric"]
    if s["rounds"] < rnd:  # state not yet updated for this round
        if outcome == "improved":
            s["best"] = {"metric": metric, "commit": journal["commit"], "round": rnd}
            s["since_improvement"] = 0
        else:
            s["since_improvement"] += 1
    best = s["best"]["metric"]
    commit = journal.get("commit") or journal["base"]
    row = records.results_row(
        rnd, commit, metric, outcome, best, journal.get("duration_s", 0.0), journal["strategy"]
    )
    records.append_result(run.run_dir / "results.tsv", row)
    detail = journal["reason"]
    if outcome == "improved":
        detail = f"committed {journal['commit'][:12]}; {detail}"
    elif journal.get("rollback"):
        detail = f"rolled back; {detail}"
    section = records.experience_section(
        rnd, outcome, metric, best, journal["strategy"], journal["insight"], detail
    )
    records.append_experience(run.run_dir / "experiences.md", rnd, section)
    if s["rounds"] < rnd:
        s["rounds"] = rnd
        if "snapshot" in journal:
            s["preexisting"] = journal["snapshot"]
        else:
            s["preexisting"] = gitops.untracked(gitops.status(run.repo))
        s["user_files"] = gitops.signatures(gitops.root_of(run.repo), s["preexisting"])
        s.pop("brief", None)
        run.save()
