"""Fault-injection batch for the watchdog: classification accuracy, restart latency, files lost.

    python bench/watchdog_faults.py [--cases 52] [--parallel 3] [--out bench/results/watchdog_faults.json]

Each case runs ``python -m toolkit.watchdog run`` on the real CPU training script
(tests/watchdog/fake_train.py) with one injected fault (SIGKILL, half-written checkpoint, NCCL
timeout text, hang, TypeError, CUDA OOM text, NaN loss, SIGTERM, Xid 79, DataLoader worker death,
disk full, device-side assert, state_dict size mismatch, unexplained exit 3). Transient faults
fire once (a marker file), so a correct restart finishes the run.

Measured per case: the class of the first exit vs the injected fault's class; restart latency
(exit detected -> new child started, back-off excluded, from the ``restart`` events); for hangs,
the time from the last child output to the new child (must be <= hang timeout + 1 s); files
lost: a watcher samples every file under the checkpoint folder and the run's logs/ every 50 ms;
a file seen once and gone at the end is lost, a log that shrank was truncated, a checkpoint whose
inode/mtime changed was overwritten. Prints a table and writes JSON. Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_TRAIN = ROOT / "tests" / "watchdog" / "fake_train.py"
HANG_TIMEOUT_S = 4.0

# fault -> (expected class, expected subclass, fault steps to cycle through)
FAULTS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "sigkill": ("environment", "sigkill", (3, 5, 6)),
    "half_ckpt": ("environment", "sigkill", (3, 5)),
    "nccl": ("environment", "nccl-timeout", (2, 4, 5)),
    "hang": ("environment", "hang", (3, 5)),
    "sigterm": ("environment", "sigterm", (3, 6)),
    "xid": ("environment", "gpu-fallen-off-bus", (3, 5)),
    "dataloader": ("environment", "dataloader-killed", (3, 4)),
    "typeerror": ("code", "python-exception", (2, 5)),
    "device_assert": ("code", "device-side-assert", (3,)),
    "size_mismatch": ("code", "state-dict-mismatch", (4,)),
    "oom": ("resources", "cuda-oom", (3, 5)),
    "disk_full": ("resources", "disk-full", (3,)),
    "nan": ("numerical", "nan-loss", (3, 5)),
    "exit3": ("unknown", "unexplained-exit", (3,)),
}


class Watcher(threading.Thread):
    """Samples (inode, size, mtime) of every file under ``roots`` every ``period_s`` seconds."""

    def __init__(self, roots: list[Path], period_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.roots, self.period_s = roots, period_s
        self.seen: dict[str, list[tuple[int, int, float]]] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        for root in self.roots:
            for p in root.rglob("*") if root.exists() else []:
                try:
                    st = p.stat()
                except OSError:
                    continue
                if p.is_file() and not p.name.endswith(".tmp"):
                    hist = self.seen.setdefault(str(p), [])
                    sig = (st.st_ino, st.st_size, st.st_mtime)
                    if not hist or hist[-1] != sig:
                        hist.append(sig)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            time.sleep(self.period_s)

    def report(self) -> dict:
        self.stop.set()
        self.join()
        self.sample()
        lost = [p for p in self.seen if not Path(p).exists()]
        truncated = [
            p
            for p, h in self.seen.items()
            if p.endswith(".log") and any(b[1] < a[1] for a, b in zip(h, h[1:], strict=False))
        ]
        overwritten = [
            p for p, h in self.seen.items() if "ckpt" in p and len({s[0] for s in h}) > 1
        ]
        return {
            "lost": lost,
            "truncated": truncated,
            "overwritten": overwritten,
            "files_seen": len(self.seen),
        }


def run_case(index: int, fault: str, step: int, base: Path) -> dict:
    work = base / f"case-{index:03d}-{fault}-{step}"
    (work / "ckpt").mkdir(parents=True)
    env = {**os.environ, "FAULT": fault, "FAULT_STEP": str(step), "FAULT_ONCE": str(work / "once")}
    argv = [
        sys.executable,
        "-m",
        "toolkit.watchdog",
        "run",
        "--run-dir",
        str(work / "run"),
        "--checkpoints",
        str(work / "ckpt" / "checkpoint-*.pt"),
        "--resume",
        "--resume {checkpoint}",
        "--backoff",
        "0.05",
        "--poll",
        "0.05",
        "--kill-grace",
        "0.5",
        "--hang-timeout",
        str(HANG_TIMEOUT_S),
        "--startup-grace",
        "60",
        "--",
        sys.executable,
        str(FAKE_TRAIN),
        "--steps",
        "8",
        "--ckpt-dir",
        str(work / "ckpt"),
    ]
    watcher = Watcher([work / "ckpt", work / "run" / "logs"])
    watcher.start()
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=work)
    wall = time.monotonic() - t0
    files = watcher.report()
    events = [json.loads(x) for x in (work / "run" / "events.jsonl").read_text().splitlines()]
    exits = [e for e in events if e["event"] == "exit"]
    restarts = [e for e in events if e["event"] == "restart"]
    starts = [e for e in events if e["event"] == "attempt_start"]
    hangs = [e for e in events if e["event"] == "hang_detected"]
    expected_cls, expected_sub, _ = FAULTS[fault]
    first = exits[0] if exits else {}
    hang_to_restart = None
    if hangs and len(starts) > 1:
        hang_to_restart = hangs[0]["idle_s"] + (starts[1]["time"] - hangs[0]["time"])
    return {
        "fault": fault,
        "step": step,
        "expected": f"{expected_cls}/{expected_sub}",
        "got": f"{first.get('cls')}/{first.get('subclass')}",
        "class_ok": first.get("cls") == expected_cls,
        "subclass_ok": first.get("subclass") == expected_sub,
        "restarted": bool(restarts),
        "finished": proc.returncode == 0,
        "rc": proc.returncode,
        "restart_latency_s": [r["latency_s"] for r in restarts],
        "hang_last_output_to_restart_s": hang_to_restart,
        "wall_s": round(wall, 2),
        **files,
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=52)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "watchdog_faults.json")
    args = ap.parse_args()
    plan = []
    kinds = list(FAULTS)
    for i in range(args.cases):
        fault = kinds[i % len(kinds)]
        steps = FAULTS[fault][2]
        plan.append((i, fault, steps[(i // len(kinds)) % len(steps)]))
    t0 = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="watchdog-bench-") as tmp,
        ThreadPoolExecutor(args.parallel) as pool,
    ):
        results = list(pool.map(lambda c: run_case(*c, Path(tmp)), plan))
    restartable = [r for r in results if r["expected"].startswith("environment/")]
    latencies = [x for r in results for x in r["restart_latency_s"]]
    hang_times = [
        r["hang_last_output_to_restart_s"] for r in results if r["hang_last_output_to_restart_s"]
    ]
    summary = {
        "cases": len(results),
        "classification_accuracy": sum(r["class_ok"] for r in results) / len(results),
        "subclass_accuracy": sum(r["subclass_ok"] for r in results) / len(results),
        "restartable_restarted_and_finished": sum(
            r["restarted"] and r["finished"] for r in restartable
        ),
        "restartable": len(restartable),
        "non_restartable_wrongly_restarted": sum(
            r["restarted"] for r in results if r not in restartable
        ),
        "restart_latency_p50_s": pct(latencies, 0.5),
        "restart_latency_p95_s": pct(latencies, 0.95),
        "restart_latency_max_s": max(latencies) if latencies else None,
        "hang_timeout_s": HANG_TIMEOUT_S,
        "hang_last_output_to_restart_max_s": max(hang_times) if hang_times else None,
        "files_lost": sum(len(r["lost"]) for r in results),
        "logs_truncated": sum(len(r["truncated"]) for r in results),
        "checkpoints_overwritten": sum(len(r["overwritten"]) for r in results),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    print(f"{'fault':14} {'step':>4}  {'expected':32} {'got':32} ok  restarts  finished")
    for r in results:
        print(
            f"{r['fault']:14} {r['step']:>4}  {r['expected']:32} {r['got']:32} "
            f"{'y' if r['class_ok'] else 'N'}   {len(r['restart_latency_s']):>8}  {r['finished']}"
        )
    print()
    for k, v in summary.items():
        print(f"{k:40} {v:.4g}" if isinstance(v, float) else f"{k:40} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "summary": summary,
                "cases": results,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
