"""Benchmark the test cluster of scripts/slurm_cluster.py and the runs registry on it.

    python bench/slurm_cluster.py [--jobs 5] [--nodes 2] [--out bench/results/slurm_cluster.json]

Measures, on a fresh cluster in a temp folder (installing slurm-wlm and munge first when they
are missing; that time is reported separately):
- start (config, three daemons, node idle) and stop (SIGTERM by PID, waited);
- ``sbatch --wrap true`` to the job's end as ``squeue -t all`` shows it, ``--jobs`` times
  (sequential; polled every 50 ms);
- ``runs sweep grid`` of 3x3 one-process runs with ``--auto-start`` until every run has settled
  in the registry (``run list`` polled every 0.5 s, as a user would);
- a requeue: ``scontrol requeue`` of a running job until it runs again, once with Slurm's hold
  on requeued jobs (Reason=BeginTime) left alone (capped at 200 s) and once released at once.
Prints a table and writes JSON. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import slurm_cluster  # noqa: E402

PY = sys.executable


def _out(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd).stdout.strip()


def _state(job: str, env: dict[str, str]) -> str:
    return _out(["squeue", "-j", job, "-h", "-t", "all", "-o", "%T"], env)


def _until(predicate, timeout: float, step: float) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            return float("nan")
        time.sleep(step)
    return time.monotonic() - t0


def job_latency(env: dict[str, str], work: Path) -> float:
    t0 = time.monotonic()
    job = _out(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "true"], env, work)
    _until(lambda: _state(job, env) == "COMPLETED", 60, 0.05)
    return time.monotonic() - t0


def sweep_3x3(env: dict[str, str], work: Path) -> float:
    (work / "t.py").write_text("import sys; sys.exit(int(sys.argv[1]) % 2)\n")
    t0 = time.monotonic()
    subprocess.run(
        [PY, "-m", "toolkit.runs", "sweep", "grid", "--name", "b", "--param", "a=0,1,2",
         "--param", "b=0,1,2", "--backend", "slurm", "--command", f"{PY} t.py {{a}} {{b}}",
         "--auto-start"],
        env=env, cwd=work, capture_output=True, check=True,
    )  # fmt: skip

    def settled() -> bool:
        rows = json.loads(
            _out([PY, "-m", "toolkit.runs", "run", "list", "--format", "json"], env, work)
        )
        return len(rows) == 9 and all(r["status"] in ("succeeded", "failed") for r in rows)

    _until(settled, 300, 0.5)
    return time.monotonic() - t0


def requeue(env: dict[str, str], work: Path, release: bool) -> float:
    job = _out(
        ["sbatch", "--parsable", "--requeue", "-o", "/dev/null", "--wrap", "sleep 300"], env, work
    )
    _until(lambda: _state(job, env) == "RUNNING", 60, 0.05)
    t0 = time.monotonic()
    subprocess.run(["scontrol", "requeue", job], env=env, check=True)
    if release:
        _until(lambda: _state(job, env) == "PENDING", 30, 0.05)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env)
    took = _until(lambda: _state(job, env) == "RUNNING", 200, 0.2)
    subprocess.run(["scancel", job], env=env)
    return float("nan") if math.isnan(took) else time.monotonic() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "slurm_cluster.json")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="labcoat-slurm-bench-"))
    info = slurm_cluster.start(root, nodes=args.nodes)
    env = {**os.environ, "SLURM_CONF": info["slurm_conf"]}
    work = root / "work"
    work.mkdir()
    try:
        latencies = [job_latency(env, work) for _ in range(args.jobs)]
        sweep_s = sweep_3x3(env, work)
        requeue_held = requeue(env, work, release=False)
        requeue_released = requeue(env, work, release=True)
    finally:
        t0 = time.monotonic()
        slurm_cluster.stop(root)
        stop_s = time.monotonic() - t0
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "node": info["node"],
        "nodes": args.nodes,
        "install_s": info["install_s"],
        "start_s": info["start_s"],
        "stop_s": round(stop_s, 2),
        "job_latency_s": {
            "median": round(statistics.median(latencies), 2),
            "min": round(min(latencies), 2),
            "max": round(max(latencies), 2),
        },
        "sweep_3x3_s": round(sweep_s, 1),
        "requeue_to_running_s": {
            "held": round(requeue_held, 1),
            "released": round(requeue_released, 1),
        },
    }
    rows = [
        ("install (apt-get; 0 = already installed)", result["install_s"]),
        (f"start ({args.nodes} node(s) idle)", result["start_s"]),
        ("stop (by PID)", result["stop_s"]),
        (f"sbatch true -> COMPLETED, median of {args.jobs}", result["job_latency_s"]["median"]),
        ("runs sweep grid 3x3 --auto-start -> all settled", result["sweep_3x3_s"]),
        ("scontrol requeue -> RUNNING (Slurm's hold)", result["requeue_to_running_s"]["held"]),
        ("scontrol requeue -> RUNNING (released)", result["requeue_to_running_s"]["released"]),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  seconds")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
