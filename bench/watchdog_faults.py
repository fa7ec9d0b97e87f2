"""Fault-injection batch for the watchdog: classification accuracy, restart latency, files lost.

    python bench/watchdog_faults.py [--rounds 4] [--new-rounds 2] [--parallel 3] [--only KIND,...]
                                    [--out bench/results/watchdog_faults.json]

Each case runs ``python -m toolkit.watchdog run`` on the real CPU training script
(tests/watchdog/fake_train.py) with one injected fault. The original 14 kinds (SIGKILL,
half-written checkpoint, NCCL timeout text, hang, TypeError, CUDA OOM text, NaN loss, SIGTERM,
Xid 79, DataLoader worker death, disk full text, device-side assert, state_dict size mismatch,
unexplained exit 3) run ``--rounds`` times each (56 cases); the 15 kinds of issue 19 run
``--new-rounds`` times each: a deadlocked trainer whose other thread prints heartbeats, a stuck
progress bar, the same step line forever, a full-size random-bytes / bit-flipped / 0-byte newest
checkpoint, a real full disk (a small tmpfs filled, then torch.save: no "No space" text), a real
SIGSEGV once / every time, a real SIGBUS, exit 0 at step 3 of 8, ``{"loss": "nan"}`` JSON lines,
a watchdog SIGKILLed and its run's whole process group killed before it is started again
(re-attach to a dead group), a watchdog SIGKILLed and started again while the run lives
(re-attach to a live one), a TypeError that leaves a grandchild running. Transient faults fire
once (a marker file), so a correct restart finishes the run.

Right action per kind: restartable kinds must restart and finish (exit 0); others must stop
(exit 1) with the expected number of restarts. Pre-existing files (a user's notes and data next
to the run, an older run's checkpoint in the checkpoint folder) are hashed before and after:
none may change.

Measured per case: the class of the first exit vs the injected fault's class; restart latency
(exit detected -> new child started, back-off excluded, from the ``restart`` events); for hangs,
the time from the last child output to the new child (must be <= hang timeout + 1 s); files
lost: a watcher samples every file under the checkpoint folder and the run's logs/ every 50 ms;
a file seen once and gone at the end is lost, a log that shrank was truncated, a checkpoint whose
inode/mtime changed was overwritten. Prints a table and writes JSON. Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_TRAIN = ROOT / "tests" / "watchdog" / "fake_train.py"
HANG_TIMEOUT_S = 8.0  # > Python+torch teardown here under load (2-5 s measured)

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


@dataclass(frozen=True)
class NewFault:
    """One of issue 19's fault kinds: the fake_train FAULT, how the case is run, what is right."""

    fault: str  # FAULT for fake_train.py
    expected: str  # cls/subclass of the first exit
    rc: int  # the watchdog's final exit code
    restarts: int  # restarts the right action makes
    steps: tuple[int, ...] = (3, 5)
    once: bool = True  # the fault fires once (transient) or on every attempt
    args: tuple[str, ...] = ()  # extra watchdog arguments
    mode: str = "plain"  # plain | tmpfs | reattach_dead | reattach_alive


NEW_FAULTS: dict[str, NewFault] = {
    "heartbeat_deadlock": NewFault("heartbeat_deadlock", "environment/hang", 0, 1),
    "tqdm_stall": NewFault("tqdm_stall", "environment/hang", 0, 1),
    "repeat_step": NewFault("repeat_step", "environment/hang", 0, 1),
    "corrupt_ckpt": NewFault("corrupt_ckpt", "environment/sigkill", 0, 1, (3, 5)),
    "bitflip_ckpt": NewFault("bitflip_ckpt", "environment/sigkill", 0, 1, (3, 5)),
    "zero_ckpt": NewFault("zero_ckpt", "environment/sigkill", 0, 1, (3, 5)),
    "disk_full_real": NewFault("disk_full_real", "resources/disk-full", 1, 0, (3, 5), mode="tmpfs"),
    "segv_once": NewFault("segv", "environment/sigsegv", 0, 1),
    "segv_always": NewFault("segv", "environment/sigsegv", 1, 1, once=False),
    "sigbus_once": NewFault("sigbus", "environment/sigbus", 0, 1),
    "exit0_early": NewFault("exit0", "unknown/exited-early", 1, 0, args=("--expect-steps", "8")),
    "json_nan": NewFault("json_nan", "numerical/nan-loss", 1, 0),
    "reattach_dead": NewFault("pause", "environment/died-unwatched", 0, 1, mode="reattach_dead"),
    "reattach_alive": NewFault("pause", "success/finished", 0, 0, mode="reattach_alive"),
    "orphan_child": NewFault("orphan", "code/python-exception", 1, 0),
}
USER_FILES = {"user/notes.txt": b"my notes\n", "user/data.bin": bytes(range(256)) * 256}


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


def place_user_files(work: Path) -> dict[str, str]:
    """Files that were there before the run (the user's, an older run's checkpoint): sha256."""
    files = {**USER_FILES, "ckpt/old-run.pt": b"an older run's checkpoint, not ours\n"}
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def changed_files(work: Path, before: dict[str, str]) -> list[str]:
    out = []
    for rel, digest in before.items():
        path = work / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            out.append(rel)
    return out


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def wait_for(path: Path, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def run_watchdog_case(argv: list[str], env: dict, work: Path, new: NewFault | None):
    """Run the watchdog; for the re-attach kinds SIGKILL it mid-run (and the run's group) first."""
    if new is None or not new.mode.startswith("reattach"):
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=work)
    first = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work
    )
    if not wait_for(work / "paused"):
        first.kill()
        raise RuntimeError("the paused fault never fired")
    first.kill()  # SIGKILL: the watchdog forwards nothing, its run goes on in its own session
    first.wait()
    if new.mode == "reattach_dead":
        pgid = json.loads((work / "run" / "state.json").read_text())["pgid"]
        os.killpg(pgid, signal.SIGKILL)  # the whole process group dies while nobody watches
        while not gone(pgid):
            time.sleep(0.02)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=work)


def run_case(index: int, kind: str, step: int, base: Path) -> dict:
    new = NEW_FAULTS.get(kind)
    fault = new.fault if new else kind
    work = base / f"case-{index:03d}-{kind}-{step}"
    (work / "ckpt").mkdir(parents=True)
    mounted = False
    if new is not None and new.mode == "tmpfs":
        mnt = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(work / "ckpt")],
            capture_output=True, text=True,
        )  # fmt: skip
        if mnt.returncode != 0:
            return {
                "fault": kind,
                "step": step,
                "not_measured": f"mount tmpfs: {mnt.stderr.strip()}",
            }
        mounted = True
    before = place_user_files(work)
    env = {**os.environ, "FAULT": fault, "FAULT_STEP": str(step)}
    if new is None or new.once:
        env["FAULT_ONCE"] = str(work / "once")
    if new is not None:
        env.update(FAULT_PAUSE_FILE=str(work / "paused"), FAULT_FILL_OK="1" if mounted else "0",
                   FAULT_PAUSE_S="30" if new.mode == "reattach_dead" else "3")  # fmt: skip
    argv = [
        sys.executable, "-m", "toolkit.watchdog", "run", "--run-dir", str(work / "run"),
        "--checkpoints", str(work / "ckpt" / "checkpoint-*.pt"), "--resume", "--resume {checkpoint}",
        "--backoff", "0.05", "--poll", "0.05", "--kill-grace", "0.5",
        "--hang-timeout", str(HANG_TIMEOUT_S), "--startup-grace", "60", *(new.args if new else ()),
        "--", sys.executable, str(FAKE_TRAIN), "--steps", "8", "--ckpt-dir", str(work / "ckpt"),
    ]  # fmt: skip
    watcher = Watcher([work / "ckpt", work / "run" / "logs"])
    watcher.start()
    t0 = time.monotonic()
    try:
        proc = run_watchdog_case(argv, env, work, new)
    finally:
        wall = time.monotonic() - t0
        files = watcher.report()
        changed = changed_files(work, before)
        if mounted:
            subprocess.run(["umount", "-l", str(work / "ckpt")], check=False)
    events = [json.loads(x) for x in (work / "run" / "events.jsonl").read_text().splitlines()]
    exits = [e for e in events if e["event"] == "exit"]
    restarts = [e for e in events if e["event"] == "restart"]
    starts = [e for e in events if e["event"] == "attempt_start"]
    hangs = [e for e in events if e["event"] == "hang_detected"]
    if new is None:
        expected_cls, expected_sub, _ = FAULTS[kind]
        expected = f"{expected_cls}/{expected_sub}"
        restartable = expected_cls == "environment"
        right_action = (bool(restarts) and proc.returncode == 0) if restartable else not restarts
    else:
        expected = new.expected
        right_action = proc.returncode == new.rc and len(restarts) == new.restarts
    first = exits[0] if exits else {}
    got = f"{first.get('cls')}/{first.get('subclass')}"
    hang_to_restart = None
    if hangs and len(starts) > 1:
        hang_to_restart = hangs[0]["idle_s"] + (starts[1]["time"] - hangs[0]["time"])
    extra: dict = {}
    if fault in ("corrupt_ckpt", "bitflip_ckpt", "zero_ckpt"):
        bad = f"checkpoint-{step}.pt"
        skipped = [e for e in events if e["event"] == "checkpoint_skipped"]
        resumed = starts[1].get("checkpoint") if len(starts) > 1 else None
        extra["bad_checkpoint_kept_and_reported"] = (
            (work / "ckpt" / bad).exists()
            and any(e["checkpoint"].endswith(bad) for e in skipped)
            and bool(resumed) and not resumed.endswith(bad)
        )  # fmt: skip
        right_action = right_action and extra["bad_checkpoint_kept_and_reported"]
    if fault == "orphan":
        extra["orphan_left_running"] = not gone(int((work / "paused").read_text()))
        right_action = right_action and not extra["orphan_left_running"]
    return {
        "fault": kind,
        "new_kind": new is not None,
        "step": step,
        "expected": expected,
        "got": got,
        "class_ok": got.split("/")[0] == expected.split("/")[0],
        "subclass_ok": got == expected,
        "right_action": right_action,
        "restarted": bool(restarts),
        "finished": proc.returncode == 0,
        "rc": proc.returncode,
        "restart_latency_s": [r["latency_s"] for r in restarts],
        "hang_last_output_to_restart_s": hang_to_restart,
        "preexisting_changed": changed,
        "wall_s": round(wall, 2),
        **extra,
        **files,
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="cases per original kind (4 -> 56)")
    ap.add_argument("--new-rounds", type=int, default=2, help="cases per issue-19 kind")
    ap.add_argument("--only", default="", help="comma-separated kinds to run (default: all)")
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "watchdog_faults.json")
    args = ap.parse_args()
    only = {k for k in args.only.split(",") if k}
    plan = []
    for r in range(args.rounds):
        for kind, (_, _, steps) in FAULTS.items():
            plan.append((kind, steps[r % len(steps)]))
    for r in range(args.new_rounds):
        for kind, nf in NEW_FAULTS.items():
            plan.append((kind, nf.steps[r % len(nf.steps)]))
    plan = [(i, k, st) for i, (k, st) in enumerate(p for p in plan if not only or p[0] in only)]
    t0 = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="watchdog-bench-") as tmp,
        ThreadPoolExecutor(args.parallel) as pool,
    ):
        results = list(pool.map(lambda c: run_case(*c, Path(tmp)), plan))
    skipped = [r for r in results if "not_measured" in r]
    results = [r for r in results if "not_measured" not in r]
    latencies = [x for r in results for x in r["restart_latency_s"]]
    hang_times = [
        r["hang_last_output_to_restart_s"] for r in results if r["hang_last_output_to_restart_s"]
    ]

    def share(rows: list[dict], key: str) -> str:
        return f"{sum(r[key] for r in rows)}/{len(rows)}"

    orig = [r for r in results if not r["new_kind"]]
    new = [r for r in results if r["new_kind"]]
    summary = {
        "cases": len(results),
        "original_cases": len(orig),
        "new_kind_cases": len(new),
        "new_kinds": len({r["fault"] for r in new}),
        "classified_right": share(results, "subclass_ok"),
        "classified_right_original": share(orig, "subclass_ok"),
        "classified_right_new": share(new, "subclass_ok"),
        "right_action": share(results, "right_action"),
        "right_action_new": share(new, "right_action"),
        "restart_latency_p50_s": pct(latencies, 0.5),
        "restart_latency_p95_s": pct(latencies, 0.95),
        "restart_latency_max_s": max(latencies) if latencies else None,
        "restarts_measured": len(latencies),
        "hang_timeout_s": HANG_TIMEOUT_S,
        "hang_last_output_to_restart_max_s": max(hang_times) if hang_times else None,
        "preexisting_files_changed": sum(len(r["preexisting_changed"]) for r in results),
        "files_lost": sum(len(r["lost"]) for r in results),
        "logs_truncated": sum(len(r["truncated"]) for r in results),
        "checkpoints_overwritten": sum(len(r["overwritten"]) for r in results),
        "not_measured": [f"{r['fault']}: {r['not_measured']}" for r in skipped],
        "wall_s": round(time.monotonic() - t0, 1),
    }
    print(f"{'fault':18} {'step':>4}  {'expected':28} {'got':28} ok  action  restarts  rc")
    for r in results:
        print(
            f"{r['fault']:18} {r['step']:>4}  {r['expected']:28} {r['got']:28} "
            f"{'y' if r['subclass_ok'] else 'N'}   {'y' if r['right_action'] else 'N':6}  "
            f"{len(r['restart_latency_s']):>8}  {r['rc']}"
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
