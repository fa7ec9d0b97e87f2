"""The only git writes in labcoat: compliance of a round's changes, commit of exactly those
paths, and rollback of exactly those paths.

Rules (the failures of the tools this replaces are the reason for each):

- The round's changes are ``git status`` against HEAD: tracked files modified, deleted, added or
  renamed, plus untracked files that were *not* there when the round started (``preexisting``:
  the untracked files at the brief, or at the end of the previous round). Ignored files are
  never looked at.
- An untracked file that was there before the round is the user's: never committed, never
  moved, never restored. A change to one is reported (:func:`user_file_changes`), not undone.
- Rollback restores tracked paths from HEAD and moves new untracked files that match the
  Variable globs (files the round created) into the run's trash folder. It never runs
  ``git clean`` or ``reset --hard``; untracked files outside the Variable globs and ignored
  files (checkpoints) stay where they are. Whatever rollback overwrites or removes is first
  copied to the trash, so nothing is lost.
- A commit stages and commits only the round's paths.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import git

from toolkit.errors import InputError
from toolkit.loops.globs import matches

FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "labcoat",
    "GIT_AUTHOR_EMAIL": "labcoat@localhost",
    "GIT_COMMITTER_NAME": "labcoat",
    "GIT_COMMITTER_EMAIL": "labcoat@localhost",
}


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # "modified" | "deleted" | "added" (in the index, not HEAD) | "untracked"

    @property
    def in_head(self) -> bool:
        return self.kind in ("modified", "deleted")


@dataclass
class Compliance:
    changes: list[Change]  # the round's changes
    violations: list[str]  # one line per offending path; empty = compliant

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def paths(self) -> list[str]:
        return sorted({c.path for c in self.changes})


def open_repo(path: Path | str) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise InputError(
            f"--repo {path}: not inside a git repository; expected a git checkout"
        ) from None


def run_git(repo: git.Repo, *args: str, env: dict[str, str] | None = None) -> str:
    try:
        return repo.git.execute(
            ["git", "--literal-pathspecs", *args], env=env, strip_newline_in_stdout=False
        )
    except git.GitCommandError as exc:
        stderr = (exc.stderr or "").strip().replace("\n", " ")
        raise InputError(
            f"git {' '.join(args[:2])} failed in {repo.working_tree_dir}: {stderr}"
        ) from None


def root_of(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir or ".").resolve()


def head_sha(repo: git.Repo) -> str:
    return run_git(repo, "rev-parse", "HEAD").strip()


def current_branch(repo: git.Repo) -> str | None:
    out = (
        run_git(repo, "symbolic-ref", "-q", "--short", "HEAD") if not repo.head.is_detached else ""
    )
    return out.strip() or None


def status(repo: git.Repo) -> list[Change]:
    """Every change against HEAD (ignored files excluded), one :class:`Change` per path."""
    out = run_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    fields = out.split("\0")
    changes: dict[str, Change] = {}
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        x, y, path = entry[0], entry[1], entry[3:]
        if x in "RC":  # defensive: --no-renames should prevent these
            old = fields[i]
            i += 1
            if x == "R":
                changes[old] = Change(old, "deleted")
            changes[path] = Change(path, "added")
        elif x == "?":
            changes[path] = Change(path, "untracked")
        elif x == "!":
            continue
        elif x == "A":
            changes[path] = Change(path, "added")
        elif "D" in (x, y):
            changes[path] = Change(path, "deleted")
        else:
            changes[path] = Change(path, "modified")
    return sorted(changes.values(), key=lambda c: c.path)


def tracked_changes(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.kind != "untracked"]


def untracked(changes: list[Change]) -> list[str]:
    return [c.path for c in changes if c.kind == "untracked"]


def list_files(repo: git.Repo) -> list[str]:
    """Tracked files plus untracked, not-ignored files."""
    out = run_git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted({p for p in out.split("\0") if p})


def signatures(root: Path, paths: list[str]) -> dict[str, list[int] | None]:
    """``[size in bytes, mtime in ns]`` of each path (``None`` when gone): cheap change detection
    for the user's untracked files, which may be large (data), so they are not hashed."""
    out: dict[str, list[int] | None] = {}
    for rel in paths:
        try:
            st = (root / rel).lstat()
        except OSError:
            out[rel] = None
            continue
        out[rel] = [st.st_size, st.st_mtime_ns]
    return out


def user_file_changes(root: Path, before: dict[str, list[int] | None]) -> list[str]:
    """One line per user file whose size or mtime moved since ``before`` was recorded."""
    now = signatures(root, sorted(before))
    lines = []
    for rel in sorted(before):
        old, new = before[rel], now[rel]
        if old is None or old == new:
            continue
        if new is None:
            lines.append(f"{rel}: the user's untracked file was deleted during the round")
        else:
            lines.append(
                f"{rel}: the user's untracked file changed during the round "
                f"({old[0]} -> {new[0]} bytes); not committed, left as it is"
            )
    return lines


def compliance(
    changes: list[Change], preexisting: set[str], variable: list[str], fixed: list[str]
) -> Compliance:
    """The round's changes and every path that breaks the rules."""
    round_changes = [c for c in changes if not (c.kind == "untracked" and c.path in preexisting)]
    violations = []
    for c in round_changes:
        if matches(c.path, fixed):
            violations.append(f"{c.path}: Fixed file {c.kind}")
        elif not matches(c.path, variable):
            what = "new file" if c.kind in ("untracked", "added") else f"file {c.kind}"
            violations.append(f"{c.path}: {what} outside the Variable files")
    return Compliance(round_changes, violations)


def _backup(root: Path, rel: str, trash: Path, move: bool) -> None:
    src = root / rel
    if not (src.exists() or src.is_symlink()):
        return
    dst = trash / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    if move:
        shutil.move(str(src), str(dst))
    elif src.is_symlink():
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst)


def _prune_empty_dirs(root: Path, rel: str) -> None:
    parent = (root / rel).parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


@dataclass
class RollbackReport:
    restored: list[str]  # tracked paths restored from HEAD
    removed: list[str]  # new Variable files moved to the trash
    unstaged: list[str]  # staged new files taken out of the index
    kept: list[str]  # new files outside the Variable globs, left in place
    trash: str
    untracked_after: list[str]  # the untracked files once the rollback is done


def rollback(
    repo: git.Repo, preexisting: set[str], variable: list[str], trash: Path
) -> RollbackReport:
    """Undo the round: restore tracked changes from HEAD, move new Variable files to ``trash``.

    Idempotent: it works from the current ``git status``, so running it twice is harmless.
    """
    root = root_of(repo)
    changes = status(repo)
    in_head = [c.path for c in changes if c.in_head]
    added = [c.path for c in changes if c.kind == "added"]
    for rel in in_head:
        _backup(root, rel, trash, move=False)
    if in_head:
        for chunk in _chunks(in_head):
            run_git(repo, "checkout", "-q", "HEAD", "--", *chunk)
    if added:
        for chunk in _chunks(added):
            run_git(repo, "rm", "-q", "--cached", "--ignore-unmatch", "--", *chunk)
    new = [p for p in added + untracked(changes) if p not in preexisting]
    removed, kept = [], []
    for rel in new:
        if matches(rel, variable):
            _backup(root, rel, trash, move=True)
            _prune_empty_dirs(root, rel)
            removed.append(rel)
        else:
            kept.append(rel)
    after = sorted((set(untracked(changes)) | set(added)) - set(removed))
    return RollbackReport(in_head, removed, added, kept, str(trash), after)


def _chunks(paths: list[str], size: int = 500) -> list[list[str]]:
    return [paths[i : i + size] for i in range(0, len(paths), size)]


def _identity_env(repo: git.Repo) -> dict[str, str] | None:
    try:
        repo.git.execute(["git", "var", "GIT_COMMITTER_IDENT"])
        repo.git.execute(["git", "var", "GIT_AUTHOR_IDENT"])
        return None
    except git.GitCommandError:
        return FALLBACK_IDENTITY


def commit_paths(repo: git.Repo, paths: list[str], message: str) -> str:
    """Stage and commit exactly ``paths`` (additions, edits, deletions); return the new sha.

    Anything else that happens to be staged is unstaged first, so it is never committed.
    Hooks are skipped (``--no-verify``): a hook must not change what the round measured.
    """
    staged = run_git(repo, "diff", "--cached", "--name-only", "-z").split("\0")
    extra = sorted({p for p in staged if p} - set(paths))
    for chunk in _chunks(extra):
        run_git(repo, "reset", "-q", "HEAD", "--", *chunk)
    for chunk in _chunks(paths):
        run_git(repo, "add", "-A", "--", *chunk)
    if not run_git(repo, "diff", "--cached", "--name-only").strip():
        return head_sha(repo)  # nothing to commit: the round changed nothing
    env = _identity_env(repo)
    run_git(repo, "commit", "-q", "--no-verify", "-m", message, env=env)
    return head_sha(repo)


def restore_tracked(repo: git.Repo, trash: Path) -> tuple[list[str], list[str]]:
    """Restore tracked files changed after a commit (e.g. by the train command) from HEAD.

    Returns the restored paths and the untracked files (the next round's snapshot).
    """
    everything = status(repo)
    changes = [c for c in everything if c.in_head]
    root = root_of(repo)
    for c in changes:
        _backup(root, c.path, trash, move=False)
    for chunk in _chunks([c.path for c in changes]):
        run_git(repo, "checkout", "-q", "HEAD", "--", *chunk)
    return [c.path for c in changes], untracked(everything)


def is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
    try:
        repo.git.execute(["git", "merge-base", "--is-ancestor", older, newer])
        return True
    except git.GitCommandError:
        return False


def soft_reset(repo: git.Repo, sha: str) -> None:
    """Move the branch back to ``sha`` keeping files and index (folds stray commits into the round)."""
    run_git(repo, "reset", "-q", "--soft", sha)


def hash_paths(repo: git.Repo, paths: list[str]) -> dict[str, str | None]:
    """Git blob id of each path's current content (``None`` when the path is gone)."""
    root = root_of(repo)
    present = [p for p in paths if (root / p).is_file()]
    out: dict[str, str | None] = dict.fromkeys(paths)
    for chunk in _chunks(present):
        shas = run_git(repo, "hash-object", "--", *chunk).split()
        out.update(zip(chunk, shas, strict=True))
    return out
