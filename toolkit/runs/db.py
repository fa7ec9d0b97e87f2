"""The runs registry: one SQLite file (default ``<project>/.labcoat/runs.db``).

Safe under several processes at once: WAL journal (readers never block the writer), a busy
timeout (a writer waits for another instead of failing), and every write in ``BEGIN IMMEDIATE``
(the write lock is taken up front, so read-then-write sequences cannot interleave).

Schema versions live in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the file as a
labcoat registry. A file that is not SQLite, another program's database, or a registry written
by a newer labcoat is refused with :class:`InputError` and never modified.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from toolkit.errors import InputError
from toolkit.runs.models import BACKENDS, QUEUED, STATUSES, Plan, Run, Sweep

APPLICATION_ID = 0x4C424354  # "LBCT"
BUSY_TIMEOUT_MS = 30_000
DB_ENV = "LABCOAT_RUNS_DB"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+,-]{0,199}$")

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        goal TEXT NOT NULL DEFAULT '',
        markdown TEXT NOT NULL,
        source TEXT,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE sweeps (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        goal TEXT NOT NULL DEFAULT '',
        plan_id INTEGER REFERENCES plans(id),
        params TEXT NOT NULL DEFAULT '{}',
        command TEXT,
        created TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        command TEXT NOT NULL,
        workdir TEXT NOT NULL,
        env TEXT NOT NULL DEFAULT '{}',
        sweep_id INTEGER REFERENCES sweeps(id),
        params TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        exit_code INTEGER,
        gpus_requested INTEGER NOT NULL DEFAULT 0,
        gpus TEXT NOT NULL DEFAULT '[]',
        host TEXT,
        backend TEXT NOT NULL CHECK (backend IN ('local', 'slurm')),
        job_id TEXT,
        pid INTEGER,
        created TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        log_path TEXT,
        metrics TEXT,
        options TEXT NOT NULL DEFAULT '{}',
        note TEXT
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE INDEX runs_sweep ON runs(sweep_id);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def now() -> str:
    """UTC time, ISO 8601 to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_db_path(start: Path | None = None) -> Path:
    """``$LABCOAT_RUNS_DB``, else ``.labcoat/runs.db`` in the nearest directory (from ``start``
    upwards) that has a ``.labcoat`` or ``.git`` directory, else in ``start``."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV])
    here = (start or Path.cwd()).resolve()
    for marker in (".labcoat", ".git"):
        for folder in (here, *here.parents):
            if (folder / marker).is_dir():
                return folder / ".labcoat" / "runs.db"
    return here / ".labcoat" / "runs.db"


def runs_dir(conn: sqlite3.Connection) -> Path:
    """``<db folder>/runs``: where each run's log and exit-code file live."""
    return Path(conn.execute("PRAGMA database_list").fetchone()[2]).parent / "runs"


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise InputError(
            f"{kind} name {name!r}: expected 1-200 characters from letters, digits and . _ = + , -"
            " starting with a letter or digit (it names a folder)"
        )
    return name


# ----------------------------------------------------------------------------- opening


def _inspect(conn: sqlite3.Connection, path: Path) -> tuple[int, int, int]:
    """(application_id, user_version, number of schema objects); refuses non-SQLite files."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise InputError(
            f"{path}: not a readable SQLite database ({exc}); it was left untouched — move it "
            "away or pass another --db"
        ) from None
    return app_id, version, objects


def _refuse_foreign(path: Path, app_id: int, version: int, objects: int) -> None:
    if app_id == 0 and objects == 0 and version == 0:
        return  # empty: a new registry
    if app_id != APPLICATION_ID:
        raise InputError(
            f"{path}: a SQLite database that is not a labcoat runs registry (application_id "
            f"{app_id:#x}, {objects} schema objects); it was left untouched — pass another --db"
        )
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{path}: registry schema v{version} is newer than this labcoat understands "
            f"(v{SCHEMA_VERSION}); upgrade labcoat — the file was left untouched"
        )


def _retry_locked(fn: Any, attempts: int = 50) -> Any:
    for attempt in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 + 0.01 * attempt)
    return None


def connect(path: Path | str, create: bool = True) -> sqlite3.Connection:
    """Open and migrate the registry at ``path``.

    ``create`` False (an explicit ``--db``): the file must already be a registry; a missing
    path (a typo) or an empty file is refused instead of silently becoming a new, empty one.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--db {path}: is a directory; expected a database file")
    if not create and not path.exists():
        raise InputError(
            f"--db {path}: no such registry (is the path mistyped?); pass --create-db to create "
            "a new one there"
        )
    if not create and path.stat().st_size == 0:
        raise InputError(
            f"--db {path}: the file is empty (0 bytes), not a runs registry; it was left "
            "untouched — pass --create-db to make it a new registry"
        )
    fresh = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not fresh:
        _refuse_foreign(path, *_inspect(conn, path))
    _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    with transaction(conn):
        app_id, version, objects = _inspect(conn, path)
        _refuse_foreign(path, app_id, version, objects)
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        if app_id != APPLICATION_ID:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
    _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# ----------------------------------------------------------------------------- plans


def _plan(conn: sqlite3.Connection, row: sqlite3.Row) -> Plan:
    sweeps = [
        r[0]
        for r in conn.execute("SELECT name FROM sweeps WHERE plan_id = ? ORDER BY id", (row["id"],))
    ]
    return Plan(
        row["id"],
        row["name"],
        row["title"],
        row["goal"],
        row["markdown"],
        row["source"],
        row["created"],
        row["updated"],
        sweeps,
    )


def save_plan(
    conn: sqlite3.Connection,
    name: str,
    title: str,
    goal: str,
    markdown: str,
    source: str | None,
    sweeps: Sequence[str] = (),
) -> Plan:
    """Insert or update plan ``name`` and link it to ``sweeps`` (which must exist)."""
    check_name("plan", name)
    stamp = now()
    with transaction(conn):
        ids = [sweep_id(conn, s) for s in sweeps]
        conn.execute(
            "INSERT INTO plans (name, title, goal, markdown, source, created, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET title = excluded.title, "
            "goal = excluded.goal, markdown = excluded.markdown, source = excluded.source, "
            "updated = excluded.updated",
            (name, title, goal, markdown, source, stamp, stamp),
        )
        plan_id = conn.execute("SELECT id FROM plans WHERE name = ?", (name,)).fetchone()[0]
        for sid in ids:
            conn.execute("UPDATE sweeps SET plan_id = ? WHERE id = ?", (plan_id, sid))
    return get_plan(conn, name)


def get_plan(conn: sqlite3.Connection, name: str) -> Plan:
    row = conn.execute("SELECT * FROM plans WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT name FROM plans ORDER BY id")]
        raise InputError(f"unknown plan {name!r}; known: {', '.join(known) or 'none'}")
    return _plan(conn, row)


def list_plans(conn: sqlite3.Connection) -> list[Plan]:
    return [_plan(conn, r) for r in conn.execute("SELECT * FROM plans ORDER BY id").fetchall()]


# ----------------------------------------------------------------------------- sweeps


def sweep_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM sweeps WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise InputError(f"unknown sweep {name!r}; create it with `sweep create --name {name}`")
    return int(row[0])


def _sweep(row: sqlite3.Row) -> Sweep:
    return Sweep(
        row["id"],
        row["name"],
        row["goal"],
        row["plan"],
        row["created"],
        json.loads(row["params"]),
        row["command"],
    )


_SWEEP_SELECT = "SELECT s.*, p.name AS plan FROM sweeps s LEFT JOIN plans p ON p.id = s.plan_id"


def create_sweep(
    conn: sqlite3.Connection,
    name: str,
    goal: str = "",
    plan: str | None = None,
    params: dict[str, list[str]] | None = None,
    command: str | None = None,
    exist_ok: bool = False,
) -> Sweep:
    check_name("sweep", name)
    with transaction(conn):
        plan_id = None
        if plan is not None:
            row = conn.execute("SELECT id FROM plans WHERE name = ?", (plan,)).fetchone()
            if row is None:
                raise InputError(f"unknown plan {plan!r}; save it with `plan save PLAN.md`")
            plan_id = row[0]
        exists = conn.execute("SELECT id FROM sweeps WHERE name = ?", (name,)).fetchone()
        if exists and not exist_ok:
            raise InputError(f"sweep {name!r} already exists")
        if exists:
            sets, values = [], []
            for column, value in (
                ("goal", goal or None),
                ("plan_id", plan_id),
                ("params", json.dumps(params) if params else None),
                ("command", command),
            ):
                if value is not None:
                    sets.append(f"{column} = ?")
                    values.append(value)
            if sets:
                conn.execute(f"UPDATE sweeps SET {', '.join(sets)} WHERE name = ?", (*values, name))
        else:
            conn.execute(
                "INSERT INTO sweeps (name, goal, plan_id, params, command, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, goal, plan_id, json.dumps(params or {}), command, now()),
            )
    return get_sweep(conn, name)


def get_sweep(conn: sqlite3.Connection, name: str) -> Sweep:
    row = conn.execute(f"{_SWEEP_SELECT} WHERE s.name = ?", (name,)).fetchone()
    if row is None:
        raise InputError(f"unknown sweep {name!r}; create it with `sweep create --name {name}`")
    return _sweep(row)


def list_sweeps(conn: sqlite3.Connection) -> list[Sweep]:
    return [_sweep(r) for r in conn.execute(f"{_SWEEP_SELECT} ORDER BY s.id").fetchall()]


# ----------------------------------------------------------------------------- runs

_RUN_SELECT = "SELECT r.*, s.name AS sweep FROM runs r LEFT JOIN sweeps s ON s.id = r.sweep_id"
_JSON_FIELDS = ("env", "params", "gpus", "options")


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        name=row["name"],
        command=row["command"],
        workdir=row["workdir"],
        env=json.loads(row["env"]),
        sweep=row["sweep"],
        params=json.loads(row["params"]),
        status=row["status"],
        exit_code=row["exit_code"],
        gpus_requested=row["gpus_requested"],
        gpus=json.loads(row["gpus"]),
        host=row["host"],
        backend=row["backend"],
        job_id=row["job_id"],
        pid=row["pid"],
        created=row["created"],
        started=row["started"],
        ended=row["ended"],
        log_path=row["log_path"],
        metrics=None if row["metrics"] is None else json.loads(row["metrics"]),
        options=json.loads(row["options"]),
        note=row["note"],
    )


def check_run_fields(command: str, backend: str, gpus: int) -> None:
    if not command or not command.strip():
        raise InputError("--command: give the command to run (e.g. 'python train.py')")
    if backend not in BACKENDS:
        raise InputError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if gpus < 0:
        raise InputError(f"--gpus must be >= 0, got {gpus}")


def _insert_run(conn: sqlite3.Connection, spec: dict[str, Any], sid: int | None) -> int:
    check_name("run", spec["name"])
    check_run_fields(spec["command"], spec.get("backend", "local"), spec.get("gpus", 0))
    try:
        cursor = conn.execute(
            "INSERT INTO runs (name, command, workdir, env, sweep_id, params, status, "
            "gpus_requested, backend, options, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                spec["name"],
                spec["command"],
                str(spec.get("workdir") or Path.cwd()),
                json.dumps(spec.get("env") or {}),
                sid,
                json.dumps(spec.get("params") or {}),
                QUEUED,
                int(spec.get("gpus", 0)),
                spec.get("backend", "local"),
                json.dumps(spec.get("options") or {}),
                now(),
            ),
        )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise InputError(f"run {spec['name']!r} already exists") from None
        raise
    return int(cursor.lastrowid or 0)


def create_runs(
    conn: sqlite3.Connection, specs: Sequence[dict[str, Any]], sweep: str | None = None
) -> list[Run]:
    """Insert queued runs atomically (all or none). Each spec: name, command, and optionally
    workdir, env, params, gpus, backend, options."""
    with transaction(conn):
        sid = sweep_id(conn, sweep) if sweep is not None else None
        ids = [_insert_run(conn, spec, sid) for spec in specs]
        rows = (
            conn.execute(
                f"{_RUN_SELECT} WHERE r.id BETWEEN ? AND ? ORDER BY r.id", (min(ids), max(ids))
            ).fetchall()
            if ids
            else []
        )
    wanted = set(ids)  # contiguous under the write lock; the filter is a safeguard
    return [_run(r) for r in rows if r["id"] in wanted]


def create_run(conn: sqlite3.Connection, sweep: str | None = None, **spec: Any) -> Run:
    return create_runs(conn, [spec], sweep)[0]


def get_run(conn: sqlite3.Connection, name: str) -> Run:
    row = conn.execute(f"{_RUN_SELECT} WHERE r.name = ?", (name,)).fetchone()
    if row is None:
        raise InputError(f"unknown run {name!r}; see `run list`")
    return _run(row)


def list_runs(
    conn: sqlite3.Connection,
    sweep: str | None = None,
    statuses: Sequence[str] = (),
    backend: str | None = None,
) -> list[Run]:
    where, values = [], []
    if sweep is not None:
        where.append("r.sweep_id = ?")
        values.append(sweep_id(conn, sweep))
    for status in statuses:
        if status not in STATUSES:
            raise InputError(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    if statuses:
        where.append(f"r.status IN ({', '.join('?' * len(statuses))})")
        values.extend(statuses)
    if backend is not None:
        where.append("r.backend = ?")
        values.append(backend)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [_run(r) for r in conn.execute(f"{_RUN_SELECT}{clause} ORDER BY r.id", values)]


def update_run(conn: sqlite3.Connection, name: str, **fields: Any) -> None:
    """Set columns of run ``name`` (call inside :func:`transaction` or alone: autocommit)."""
    sets, values = [], []
    for column, value in fields.items():
        if column in _JSON_FIELDS or (column == "metrics" and value is not None):
            value = json.dumps(value)
        sets.append(f"{column} = ?")
        values.append(value)
    conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE name = ?", (*values, name))
