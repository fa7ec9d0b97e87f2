"""Crash recovery from the round journal (``round.json`` in the run folder).

The journal is written (atomically) before each step acts:

========================  ================================================================
state                     meaning / what recovery does
========================  ================================================================
``started``               compliance done, train/eval may be running. Recovery kills the
                          recorded process group if it is still alive, marks the round
                          ``failed`` ("interrupted") and rolls it back.
``evaluated``             metric and outcome known, git untouched: recovery performs the
                          decided commit or rollback. Before committing it checks the round's
                          files still hold what was evaluated (blob ids in the journal);
                          if not, the round is marked failed and rolled back.
``committing``            the git action may be half done: a commit carrying the round's
                          ``Labcoat-Round`` trailer at HEAD counts as done, otherwise the
                          commit is made again; rollback is idempotent and simply re-run.
``recorded_pending``      git done: recovery (re)writes the records (keyed by round).
``recorded``              all done: the journal is removed.
========================  ================================================================

Every command other than ``validate`` and ``init`` calls :func:`recover` first, so the round
ends either fully recorded or rolled back, never half way. Rollbacks copy what they overwrite
to the run's trash folder, so nothing a user wrote is lost.
"""

from __future__ import annotations

import os
from typing import Any

from toolkit.loops import gitops, records
from toolkit.loops.judge import (
    RoundResult,
    Run,
    finish_round,
    group_members,
    kill_group,
    process_identity,
)


def _ours_alive(pgid: int, identity: dict[str, Any] | None) -> bool:
    """Is the round's process group still running (and still the same processes)?"""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if identity is None:  # not Linux, or not recorded: trust the pgid
        return True
    now = process_identity(os.getpid())
    if now is None or now["boot_id"] != identity["boot_id"]:
        return False  # rebooted since: that group is gone, the pgid belongs to someone else
    members = dict(group_members(pgid))
    if pgid in members:  # a leader with this pid: ours only if it started when ours did
        return members[pgid] == identity["start_ticks"]
    # leader gone, members left: the old group's orphans all started at or after its leader
    return bool(members) and all(start >= identity["start_ticks"] for start in members.values())


def _committed(run: Run, journal: dict[str, Any]) -> bool:
    head = gitops.head_sha(run.repo)
    return (
        head != journal["base"]
        and f"Labcoat-Round: {journal['round']}\n" in run.repo.head.commit.message
    )


def recover(run: Run) -> RoundResult | None:
    """Bring an interrupted round to a consistent end; ``None`` when there was nothing to do."""
    if not run.journal.exists():
        return None
    journal: dict[str, Any] = records.read_json(run.journal)
    state = journal.get("state")
    if state == "started":
        pgid = journal.get("pgid")
        killed = (
            bool(pgid) and _ours_alive(int(pgid), journal.get("process")) and kill_group(int(pgid))
        )
        journal.update(
            state="evaluated", outcome="failed", metric=None, duration_s=0.0,
            reason="interrupted: the supervisor stopped before the evaluation finished"
            + ("; its leftover process group was killed" if killed else ""),
        )  # fmt: skip
        records.write_json(run.journal, journal)
    elif journal.get("outcome") == "improved" and state in ("evaluated", "committing"):
        if not _committed(run, journal):
            now = gitops.hash_paths(run.repo, journal["changed"])
            if now != journal.get("hashes", now):
                moved = sorted(p for p in now if now[p] != journal["hashes"].get(p))
                journal.update(
                    outcome="failed",
                    reason=f"interrupted before commit, and {', '.join(moved)} changed since the evaluation; rolled back",
                )
                records.write_json(run.journal, journal)
    result = finish_round(run, journal)
    result.notes.append(f"recovered round {journal['round']} from journal state {state!r}")
    return result
