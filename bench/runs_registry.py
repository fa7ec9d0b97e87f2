"""Benchmark the runs registry: insert 10,000 runs, then list them.

    python bench/runs_registry.py [--runs 10000] [--out bench/results/runs_registry.json]

Measures, on a fresh registry in a temp folder:
- one-by-one inserts (``db.create_run``: one ``BEGIN IMMEDIATE`` transaction each, as the CLI
  does): per-insert latency p50/p95/max and the total;
- a batched insert of the same count (``db.create_runs``: one transaction, as ``sweep grid``);
- listing: ``db.list_runs`` of all runs, filtered by sweep and by status, and the CLI
  ``python -m toolkit.runs run list --format json`` end to end (process start included).
Prints a table and writes JSON. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.runs import db  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(n: int, repeats: int, folder: Path) -> dict[str, float | int]:
    conn = db.connect(folder / "one" / "runs.db")
    db.create_sweep(conn, "s0")
    db.create_sweep(conn, "s1")
    lat = []
    t_all = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        db.create_run(
            conn,
            sweep=f"s{i % 2}",
            name=f"run-{i:05d}",
            command=f"python train.py --lr {i}",
            params={"lr": str(i)},
        )
        lat.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    conn.execute("UPDATE runs SET status = 'succeeded', exit_code = 0 WHERE id % 3 = 0")

    batch_conn = db.connect(folder / "batch" / "runs.db")
    specs = [{"name": f"run-{i:05d}", "command": f"python train.py --lr {i}"} for i in range(n)]
    t0 = time.perf_counter()
    db.create_runs(batch_conn, specs)
    batch = time.perf_counter() - t0
    batch_conn.close()

    list_all = _best(lambda: db.list_runs(conn), repeats)
    list_sweep = _best(lambda: db.list_runs(conn, sweep="s1"), repeats)
    list_status = _best(lambda: db.list_runs(conn, statuses=["succeeded"]), repeats)
    count = len(db.list_runs(conn))
    conn.close()

    def cli_list() -> None:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "toolkit.runs",
                "run",
                "list",
                "--format",
                "json",
                "--db",
                str(folder / "one" / "runs.db"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if proc.returncode != 0 or len(json.loads(proc.stdout)) != n:
            sys.exit(f"run list failed: {proc.stderr[-2000:]}")

    cli = _best(cli_list, max(1, repeats // 2))
    return {
        "runs": n,
        "listed": count,
        "insert_total_s": total,
        "insert_per_run_p50_ms": 1e3 * statistics.median(lat),
        "insert_per_run_p95_ms": 1e3 * _pct(lat, 0.95),
        "insert_per_run_max_ms": 1e3 * max(lat),
        "insert_runs_per_s": n / total,
        "batch_insert_total_s": batch,
        "list_all_s": list_all,
        "list_by_sweep_s": list_sweep,
        "list_by_status_s": list_status,
        "cli_list_json_s": cli,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "runs_registry.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = bench(args.runs, args.repeats, Path(tmp))
    rows = [
        (
            "insert, one transaction per run",
            f"{result['insert_total_s']:.2f} s total, "
            f"p50 {result['insert_per_run_p50_ms']:.2f} ms, p95 {result['insert_per_run_p95_ms']:.2f} ms, "
            f"max {result['insert_per_run_max_ms']:.1f} ms ({result['insert_runs_per_s']:.0f} runs/s)",
        ),
        ("insert, one transaction (batch)", f"{result['batch_insert_total_s']:.3f} s"),
        (f"list all {result['listed']} (library)", f"{result['list_all_s'] * 1e3:.0f} ms"),
        ("list one sweep (half)", f"{result['list_by_sweep_s'] * 1e3:.0f} ms"),
        ("list by status (a third)", f"{result['list_by_status_s'] * 1e3:.0f} ms"),
        (
            "CLI run list --format json",
            f"{result['cli_list_json_s']:.2f} s (process start included)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    payload = {
        "benchmark": "runs_registry",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
