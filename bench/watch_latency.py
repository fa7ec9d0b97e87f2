"""How long ``logs watch`` takes to report a NaN after it is written, by log size.

    python bench/watch_latency.py [--sizes 1000,100000,1000000] [--repeats 3] [--out bench/results/watch_latency.json]

For each size: a JSONL log of that many steps is written, ``python -m toolkit.logs watch``
is started on it (``--format json --exit-on-error``) and waited for until its first pass is
done, then a writer process appends 20 more healthy lines and one NaN line (flushed) and
notes the time. Lag = the watcher's ``detected_at`` minus that time. Each pass re-reads the
whole log, so the lag grows with the log: the table shows how much. Not a test: it asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.cli import render_table  # noqa: E402


def write_log(path: Path, steps: int) -> None:
    with path.open("w") as f:
        for step in range(steps):
            f.write(json.dumps({"step": step, "loss": 2.0 + 1.0 / (1 + step), "lr": 1e-3}) + "\n")


def one(size: int, tmp: Path) -> dict:
    log = tmp / f"log-{size}.jsonl"
    write_log(log, size)
    cmd = [sys.executable, "-m", "toolkit.logs", "watch", str(log), "--format", "json",
           "--exit-on-error", "--interval", "0.5", "--max-s", "120"]  # fmt: skip
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert json.loads(watcher.stdout.readline())["event"] == "watching"
    time.sleep(2.0 + size / 200_000)  # let the first full pass finish
    with log.open("a") as f:
        for step in range(size, size + 20):
            f.write(json.dumps({"step": step, "loss": 2.0, "lr": 1e-3}) + "\n")
        f.write(json.dumps({"step": size + 20, "loss": float("nan"), "lr": 1e-3}) + "\n")
        f.flush()
        written = time.time()
    out, _ = watcher.communicate(timeout=180)
    events = [json.loads(line) for line in out.splitlines()]
    nan = [e for e in events if e.get("event") == "finding" and e["finding"]["kind"] == "nan_inf"]
    end = events[-1]
    return {"size": size, "lag_s": nan[0]["detected_at"] - written if nan else None,
            "passes": end.get("passes"), "bytes": log.stat().st_size}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "watch_latency.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            runs = [one(size, Path(tmp)) for _ in range(args.repeats)]
            raw += runs
            lags = [r["lag_s"] for r in runs if r["lag_s"] is not None]
            rows.append([f"{size:,}", f"{runs[0]['bytes'] / 1e6:.1f}",
                         f"{statistics.median(lags):.2f}" if lags else "missed",
                         f"{min(lags):.2f}" if lags else "-", f"{max(lags):.2f}" if lags else "-",
                         f"{len(lags)}/{len(runs)}"])  # fmt: skip
    print(render_table(["steps in log", "MB", "median lag (s)", "min", "max", "reported"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                    "runs": raw}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
