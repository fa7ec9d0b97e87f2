"""The registry file: schema versioning, refusal of foreign/corrupt/newer files, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.runs.conftest import cli
from toolkit.errors import InputError
from toolkit.runs import db


def test_new_registry_is_wal_and_versioned(dbpath: Path) -> None:
    conn = db.connect(dbpath)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == db.APPLICATION_ID
    conn.close()
    db.connect(dbpath).close()  # reopening does not migrate twice


def test_corrupt_file_refused_untouched(dbpath: Path) -> None:
    dbpath.parent.mkdir(parents=True)
    dbpath.write_bytes(b"this is not sqlite at all\n" * 100)
    before = dbpath.read_bytes()
    with pytest.raises(InputError, match="not a readable SQLite database"):
        db.connect(dbpath)
    res = cli("run", "list", "--db", str(dbpath), cwd=dbpath.parent)
    assert res.returncode == 2 and "not a readable SQLite database" in res.stderr
    assert "Traceback" not in res.stderr
    assert dbpath.read_bytes() == before


def test_foreign_db_refused_untouched(dbpath: Path) -> None:
    dbpath.parent.mkdir(parents=True)
    other = sqlite3.connect(dbpath)
    other.execute("CREATE TABLE runs (id INTEGER, payload TEXT)")
    other.execute("INSERT INTO runs VALUES (1, 'theirs')")
    other.commit()
    other.close()
    before = dbpath.read_bytes()
    res = cli("run", "create", "--name", "a", "--command", "true", cwd=dbpath.parent.parent)
    assert res.returncode == 2, res.stderr
    assert "not a labcoat runs registry" in res.stderr and "left untouched" in res.stderr
    assert dbpath.read_bytes() == before
    assert not Path(f"{dbpath}-wal").exists()


def test_newer_schema_refused(dbpath: Path) -> None:
    db.connect(dbpath).close()
    raw = sqlite3.connect(dbpath)
    raw.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(InputError, match="newer than this labcoat"):
        db.connect(dbpath)
    raw = sqlite3.connect(dbpath)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION + 1
    raw.close()


def test_db_path_is_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        db.connect(tmp_path)


def test_default_path_finds_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert db.default_db_path(sub) == tmp_path / ".labcoat" / "runs.db"
    monkeypatch.setenv(db.DB_ENV, str(tmp_path / "x.db"))
    assert db.default_db_path(sub) == tmp_path / "x.db"


WORKER = textwrap.dedent(
    """
    import sys
    from toolkit.runs import db
    path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = db.connect(path)
    for i in range(count):
        db.create_run(conn, sweep="s" if i % 2 else None, name=f"w{worker}-r{i}",
                      command=f"echo {worker} {i}")
        if i % 5 == 0:
            db.list_runs(conn)
    conn.close()
    """
)


def test_concurrent_writers_lose_nothing(dbpath: Path) -> None:
    conn = db.connect(dbpath)
    db.create_sweep(conn, "s")
    workers, per = 6, 40
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(dbpath), str(w), str(per)])
        for w in range(workers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * workers
    runs = db.list_runs(conn)
    assert len(runs) == workers * per
    assert {r.name for r in runs} == {f"w{w}-r{i}" for w in range(workers) for i in range(per)}
    assert len(db.list_runs(conn, sweep="s")) == workers * per // 2
    conn.close()


def test_concurrent_first_open(tmp_path: Path) -> None:
    """Several processes creating the registry at the same moment: one schema, all runs kept."""
    path = tmp_path / "fresh" / "runs.db"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER.replace('sweep="s" if i % 2 else None', "sweep=None"),
                str(path),
                str(w),
                "10",
            ]
        )
        for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    conn = db.connect(path)
    assert len(db.list_runs(conn)) == 40
    conn.close()


def test_duplicate_and_unknown_names(conn) -> None:
    db.create_run(conn, name="a", command="true")
    with pytest.raises(InputError, match="already exists"):
        db.create_run(conn, name="a", command="true")
    with pytest.raises(InputError, match="unknown sweep 'nope'"):
        db.create_run(conn, sweep="nope", name="b", command="true")
    with pytest.raises(InputError, match="unknown run"):
        db.get_run(conn, "zzz")
    with pytest.raises(InputError, match="run name"):
        db.create_run(conn, name="../evil", command="true")
    with pytest.raises(InputError, match="--command"):
        db.create_run(conn, name="c", command="  ")
    assert [r.name for r in db.list_runs(conn)] == ["a"]


def test_migration_upgrades_in_place(dbpath: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = db.connect(dbpath)
    db.create_run(conn, name="old", command="true")
    conn.close()
    monkeypatch.setattr(
        db, "MIGRATIONS", [*db.MIGRATIONS, "ALTER TABLE runs ADD COLUMN extra TEXT"]
    )
    monkeypatch.setattr(db, "SCHEMA_VERSION", len(db.MIGRATIONS))
    conn = db.connect(dbpath)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert [tuple(r) for r in conn.execute("SELECT name, extra FROM runs")] == [("old", None)]
    conn.close()
