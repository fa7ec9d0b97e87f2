"""Run state and the two logs, kept outside the tracked tree so rollbacks never touch them.

Layout (in the main checkout, also for worktree runs)::

    .labcoat/.gitignore                       "*": the folder ignores itself
    .labcoat/autoresearch/current             name of the run commands use by default
    .labcoat/autoresearch/<run>/state.json    protocol copy, best, counters, untracked snapshot
    .labcoat/autoresearch/<run>/results.tsv   one row per round (round 0 = baseline)
    .labcoat/autoresearch/<run>/experiences.md  one section per round: strategy, insight, result
    .labcoat/autoresearch/<run>/round.json    the round journal (see recovery.py)
    .labcoat/autoresearch/<run>/logs/         train/eval output per round
    .labcoat/autoresearch/<run>/trash/round-N/  everything a rollback overwrote or removed
    .labcoat/autoresearch/<run>/lock          flock held by the running command (one at a time)
    .labcoat/iterate/<name>/                  ml-iteration: accepted metrics, snapshot, journal, trash

Every write is atomic: a temp file in the same folder, fsync, ``os.replace``. Appends are
idempotent (keyed by round), so a crashed round can be recorded again safely.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git

from toolkit.errors import InputError

RESULTS_HEADER = "round\tcommit\tmetric\tstatus\tbest\tduration_s\tstrategy"
SECTION_RE = re.compile(r"^## Round (\d+)\b", re.M)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); the run state is damaged") from None


def main_root(repo: git.Repo) -> Path:
    """The main checkout's root (for a linked worktree, the repo it belongs to)."""
    return Path(repo.common_dir).resolve().parent


def labcoat_dir(repo: git.Repo) -> Path:
    d = main_root(repo) / ".labcoat"
    d.mkdir(exist_ok=True)
    ignore = d / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, "# labcoat run state: never tracked, never touched by rollbacks\n*\n")
    return d


def area_dir(repo: git.Repo, area: str) -> Path:
    return labcoat_dir(repo) / area


def find_run(repo: git.Repo, name: str | None, area: str = "autoresearch") -> Path:
    base = main_root(repo) / ".labcoat" / area
    if name is None:
        current = base / "current"
        if not current.is_file():
            raise InputError(
                f"no {area} run in {main_root(repo)}: run 'init PROTOCOL' first or pass --run NAME"
            )
        name = current.read_text(encoding="utf-8").strip()
    run_dir = base / name
    if not (run_dir / "state.json").is_file():
        known = (
            sorted(p.name for p in base.iterdir() if (p / "state.json").is_file())
            if base.is_dir()
            else []
        )
        raise InputError(f"--run: no run named {name!r} (known: {', '.join(known) or 'none'})")
    return run_dir


def _fmt(value: float | None) -> str:
    return "" if value is None else repr(float(value))  # shortest exact round-trip


def results_row(
    rnd: int, commit: str, metric: float | None, status: str, best: float | None,
    duration_s: float, strategy: str,
) -> str:  # fmt: skip
    clean = " ".join(strategy.split()).replace("\t", " ")
    return "\t".join(
        [str(rnd), commit[:12], _fmt(metric), status, _fmt(best), f"{duration_s:.2f}", clean]
    )


def append_result(path: Path, row: str) -> bool:
    """Add ``row`` unless a row for the same round is there; returns whether it was added."""
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_HEADER + "\n"
    key = row.split("\t", 1)[0] + "\t"
    lines = [ln for ln in text.splitlines() if ln]
    if any(ln.startswith(key) for ln in lines[1:]):
        return False
    atomic_write(path, "\n".join(lines + [row]) + "\n")
    return True


def read_results(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    header = lines[0].split("\t") if lines else []
    return [dict(zip(header, ln.split("\t"), strict=False)) for ln in lines[1:]]


def append_experience(path: Path, rnd: int, section: str) -> bool:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if any(int(m) == rnd for m in SECTION_RE.findall(text)):
        return False
    atomic_write(path, text.rstrip("\n") + "\n\n" + section.strip("\n") + "\n")
    return True


def experience_section(
    rnd: int, status: str, metric: float | None, best: float | None, strategy: str,
    insight: str, detail: str = "",
) -> str:  # fmt: skip
    lines = [
        f"## Round {rnd} — {status}",
        f"- metric: {_fmt(metric) or 'none'} (best so far: {_fmt(best) or 'none'})",
        f"- strategy: {strategy.strip() or '(none given)'}",
        f"- insight: {insight.strip() or '(none given)'}",
    ]
    if detail:
        lines.append(f"- detail: {detail}")
    return "\n".join(lines)


def last_experiences(path: Path, n: int) -> list[str]:
    if not path.exists() or n <= 0:
        return []
    text = path.read_text(encoding="utf-8")
    starts = [m.start() for m in SECTION_RE.finditer(text)]
    sections = [text[a:b].strip() for a, b in zip(starts, starts[1:] + [len(text)], strict=True)]
    return sections[-n:]


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive lock on a run for one command; the OS drops it if the process dies."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise InputError(
                f"another labcoat command (pid {holder}) is working on {run_dir}; wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
