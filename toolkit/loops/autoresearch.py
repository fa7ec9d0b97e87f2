"""``init``, ``brief`` and ``status`` for an autoresearch run (``judge`` is in judge.py)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import InputError
from toolkit.loops import gitops, records
from toolkit.loops.globs import filter_paths, matches
from toolkit.loops.judge import Run, evaluate, termination
from toolkit.loops.protocol import Protocol, ProtocolError, check_against_repo, parse_protocol


class BaselineError(Exception):
    """The baseline evaluation failed; init undid what it created."""


@dataclass
class InitResult:
    run: str
    run_dir: str
    workdir: str
    branch: str
    baseline: float
    commit: str
    notes: list[str] = field(default_factory=list)


def validate(protocol_path: Path, repo_path: Path) -> tuple[Protocol | None, list[str]]:
    """Parse and check a protocol against the repo; every problem, each naming its field."""
    try:
        protocol = parse_protocol(protocol_path)
    except ProtocolError as exc:
        return None, exc.problems
    repo = gitops.open_repo(repo_path)
    return protocol, check_against_repo(protocol, gitops.root_of(repo), gitops.list_files(repo))


def user_files_message(protocol: Protocol, loose: list[str], tracked: list[str]) -> str:
    """The one message ``init`` gives when the user's untracked files sit in Fixed/Variable paths."""
    shown = " ".join(loose[:8]) + (" ..." if len(loose) > 8 else "")
    only = [
        g
        for g in protocol.fixed_files + protocol.variable_files
        if filter_paths(loose, g) and not filter_paths(tracked, g)
    ]
    why_commit = (
        f" (glob(s) {', '.join(repr(g) for g in only)} match only these files, so moving them "
        "would leave the glob matching nothing: commit them)"
        if only
        else ""
    )
    return (
        f"{len(loose)} untracked file(s) of yours match the Fixed/Variable globs: {shown}. "
        "labcoat never commits, moves or restores a file it did not create, so a round could "
        "neither keep nor undo edits to them. To start, either commit them "
        f"(git add -- {shown} && git commit -m 'files for {protocol.name}'){why_commit}, "
        "or move them out of those paths, or narrow 'variable_files'/'fixed_files' in the "
        "protocol so they match only tracked files; then run init again. Nothing was changed"
    )


def record_brief(run: Run) -> dict[str, Any]:
    """Record the untracked files at the first brief of a round: they are the user's.

    A later brief of the same round keeps the first record (the researcher may have created
    files since). Returns the record ``{"round": N, "untracked": {path: [size, mtime_ns]}}``.
    """
    rnd = run.state["rounds"] + 1
    rec = run.state.get("brief")
    if rec and rec.get("round") == rnd:
        return rec
    repo = run.repo
    loose = gitops.untracked(gitops.status(repo))
    rec = {"round": rnd, "untracked": gitops.signatures(gitops.root_of(repo), loose)}
    run.state["brief"] = rec
    run.save()
    return rec


def _branch_exists(repo: Any, branch: str) -> bool:
    return bool(repo.git.execute(["git", "branch", "--list", branch]).strip())


def init(protocol_path: Path, repo_path: Path) -> InitResult:
    protocol, problems = validate(protocol_path, repo_path)
    if problems or protocol is None:
        raise ProtocolError(str(protocol_path), problems)
    repo = gitops.open_repo(repo_path)
    root = gitops.root_of(repo)
    changes = gitops.status(repo)
    dirty = [c.path for c in gitops.tracked_changes(changes)]
    if dirty:
        shown = ", ".join(dirty[:8]) + (" ..." if len(dirty) > 8 else "")
        raise InputError(
            f"working tree is dirty (uncommitted changes to tracked files: {shown}); commit or stash them first. Nothing was changed"
        )
    loose = [
        p
        for p in gitops.untracked(changes)
        if matches(p, protocol.fixed_files + protocol.variable_files)
    ]
    if loose:
        tracked = gitops.run_git(repo, "ls-files", "-z").split("\0")
        raise InputError(user_files_message(protocol, loose, [t for t in tracked if t]))
    base_dir = records.main_root(repo) / ".labcoat" / "autoresearch"
    run_dir = base_dir / protocol.name
    if run_dir.exists():
        raise InputError(
            f"run {protocol.name!r} already exists in {run_dir}; change 'name' in the protocol"
        )
    if _branch_exists(repo, protocol.branch):
        raise InputError(f"field 'workspace.branch': branch {protocol.branch!r} already exists")
    workdir = root
    if protocol.worktree:
        workdir = (records.main_root(repo) / protocol.worktree).resolve()
        if workdir.exists():
            raise InputError(f"field 'workspace.worktree': {workdir} already exists")
    original = gitops.current_branch(repo) or gitops.head_sha(repo)

    records.area_dir(repo, "autoresearch").mkdir(exist_ok=True)
    run_dir.mkdir()
    created_worktree = False
    try:
        if protocol.worktree:
            gitops.run_git(repo, "worktree", "add", "-q", "-b", protocol.branch, str(workdir))
            created_worktree = True
        fast = protocol.baseline_time_limit_s
        ev = evaluate(protocol, workdir, run_dir / "logs" / "round-000", time_limit_s=fast)
        if ev.metric is None and ev.timed_out and fast is not None:
            raise BaselineError(
                f"baseline too slow: not done within baseline_time_limit_s {fast:g} s; make the baseline fast (fewer steps, a data subset) so every round stays cheap (nothing was kept)"
            )
        if ev.metric is None:
            raise BaselineError(
                f"baseline failed: {ev.reason} (nothing was kept; logs were in {run_dir}/logs)"
            )
        if not protocol.worktree:
            gitops.run_git(repo, "checkout", "-q", "-b", protocol.branch)
    except BaseException:
        if created_worktree:
            gitops.run_git(repo, "worktree", "remove", "--force", str(workdir))
            gitops.run_git(repo, "branch", "-D", protocol.branch)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    wrepo = gitops.open_repo(workdir)
    commit = gitops.head_sha(wrepo)
    notes = []
    touched, _ = gitops.restore_tracked(wrepo, run_dir / "trash" / "round-000")
    if touched:
        notes.append(
            f"the baseline run changed tracked files {', '.join(touched[:5])}: restored from HEAD (copies in trash/round-000)"
        )
    expected = protocol.metric.baseline
    if expected is not None and abs(ev.metric - expected) > 1e-9 * max(1.0, abs(expected)):
        notes.append(
            f"measured baseline {ev.metric:.6g} differs from the protocol's metric.baseline {expected:.6g}; the measured value is used"
        )
    state = {
        "run": protocol.name, "protocol": protocol.to_dict(),
        "protocol_path": str(protocol_path.resolve()), "workdir": str(workdir),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "original_ref": original,
        "baseline": {"metric": ev.metric, "commit": commit},
        "best": {"metric": ev.metric, "commit": commit, "round": 0},
        "rounds": 0, "since_improvement": 0,
        "preexisting": (loose := gitops.untracked(gitops.status(wrepo))),
        "user_files": gitops.signatures(gitops.root_of(wrepo), loose),
    }  # fmt: skip
    records.write_json(run_dir / "state.json", state)
    records.append_result(
        run_dir / "results.tsv",
        records.results_row(0, commit, ev.metric, "baseline", ev.metric, ev.duration_s, "baseline"),
    )
    head = f"# Experiences: {protocol.name}\n\nQuestion: {protocol.question}\n"
    records.atomic_write(run_dir / "experiences.md", head)
    records.append_experience(
        run_dir / "experiences.md", 0,
        records.experience_section(0, "baseline", ev.metric, ev.metric, "baseline (unchanged code)", "starting point"),
    )  # fmt: skip
    records.atomic_write(base_dir / "current", protocol.name + "\n")
    return InitResult(
        protocol.name, str(run_dir), str(workdir), protocol.branch, ev.metric, commit, notes
    )


def brief(run: Run) -> str:
    p, s = run.protocol, run.state
    experiences = records.last_experiences(run.run_dir / "experiences.md", p.brief_experiences)
    stop = termination(run)
    m = p.metric
    lines = [
        f"# Autoresearch brief: {p.name}, round {s['rounds'] + 1} of {p.max_rounds}",
        "",
        *([f"**STOP: {stop}.** The supervisor should end the loop.", ""] if stop else []),
        f"Research question: {p.question}",
        "",
        f"Goal: {m.direction} `{m.name}`"
        + (f" (target {m.target:g})" if m.target is not None else ""),
        f"Best so far: {s['best']['metric']:.6g} at commit {s['best']['commit'][:12]} (round {s['best']['round']}); baseline {s['baseline']['metric']:.6g}",
        f"Rounds without improvement: {s['since_improvement']} (plateau after {p.plateau.rounds})",
        "",
        "## You may edit, add or delete only these files (Variable)",
        *[f"- `{g}`" for g in p.variable_files],
        *(["", f"Allowed range: {p.allowed_range}"] if p.allowed_range else []),
        "",
        "## Never touch (Fixed; touching one fails the round)",
        *[f"- `{g}`" for g in p.fixed_files],
        "",
        "## Rules",
        "- Make one focused change, then stop; the supervisor evaluates it.",
        f"- Evaluation: `{p.train_command + ' && ' if p.train_command else ''}{p.eval_command}` within {p.time_limit_s:g} s in total.",
        *(
            [
                f"- At most {p.max_epochs} epochs per round (the commands get LABCOAT_MAX_EPOCHS={p.max_epochs}); more fails the round."
            ]
            if p.max_epochs
            else []
        ),
        *(
            [f"- A round whose output is silent for {p.stall_s:g} s is killed as stalled."]
            if p.stall_s
            else []
        ),
        "- Do not commit, reset, stash or switch branches; do not create files outside the Variable globs.",
        f"- The {len(run.state.get('brief', {}).get('untracked', {}))} untracked file(s) present at this brief are the user's: "
        "they are never committed or moved, and an edit to one is reported, not kept.",
        "- Hand back a one-line strategy (what you changed) and insight (what you expect or learned).",
        "",
        f"## Last {len(experiences)} experiences",
        *(experiences or ["(none yet)"]),
    ]
    return "\n".join(lines) + "\n"


def status(run: Run) -> dict[str, Any]:
    s = run.state
    return {
        "run": s["run"], "branch": run.protocol.branch, "workdir": s["workdir"],
        "rounds": s["rounds"], "max_rounds": run.protocol.max_rounds,
        "metric": run.protocol.metric.name, "direction": run.protocol.metric.direction,
        "baseline": s["baseline"], "best": s["best"],
        "plateau_count": s["since_improvement"], "plateau_rounds": run.protocol.plateau.rounds,
        "stop": termination(run), "journal_pending": run.journal.exists(),
        "results": records.read_results(run.run_dir / "results.tsv"),
    }  # fmt: skip
