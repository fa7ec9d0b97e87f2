"""Parse + analyze speed of ``toolkit.logs`` on a 1,000,000-row JSONL log, against pandas.

    python bench/logs_speed.py [--rows 1000000] [--repeats 3] [--keep /tmp/bench.jsonl] [--out FILE.json]

The log has ``step, loss, lr, grad_norm`` on every row (floats written as ``json.dumps`` does:
shortest repr, up to 17 digits) and an eval row (``step, eval_loss, eval_runtime``) every 1000
steps. Ours, two ways: in-process ``read_log`` + ``analyze`` (every detector), and the CLI a person
or agent runs, ``python -m toolkit.logs analyze PATH --format json``, timed as a whole fresh
process (interpreter start and imports included). Baseline: ``pandas.read_json(lines=True)``
(parse only), best of the same number of repeats. pandas is not a labcoat dependency:
``pip install pandas`` to get the comparison. ``--numpy`` disables the C accelerator to time the
pure-numpy path (used where no C compiler was available at install).
Prints a table; writes JSON with ``--out``. Not a test: it asserts nothing (the goal is <= 2 s
and >= 5x pandas on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.logs import analyze, read_log


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    s = np.arange(rows)
    warm = max(1, rows // 50)
    t = np.clip((s - warm) / max(1, rows - warm), 0, 1)
    lr = np.where(s < warm, 3e-4 * (s + 1) / warm, 3e-4 * 0.5 * (1 + np.cos(math.pi * t)))
    loss = (2.2 + 8.5 * (1 + s / 600.0) ** -0.6) * (1 + 0.02 * rng.standard_normal(rows))
    grad = (0.4 + 2.0 * (1 + s / 1000.0) ** -0.5) * np.exp(0.15 * rng.standard_normal(rows))
    with open(path, "w") as fh:
        chunk = []
        for st, lo, r, g in zip(s.tolist(), loss.tolist(), lr.tolist(), grad.tolist(), strict=True):
            chunk.append(f'{{"step": {st}, "loss": {lo!r}, "lr": {r!r}, "grad_norm": {g!r}}}\n')
            if st % 1000 == 999:
                chunk.append(
                    json.dumps({"step": st, "eval_loss": lo + 0.05, "eval_runtime": 12.5}) + "\n"
                )
            if len(chunk) >= 100_000:
                fh.write("".join(chunk))
                chunk = []
        fh.write("".join(chunk))


def time_ours(path: Path, repeats: int) -> tuple[list[float], list[float], dict]:
    parse, total = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run = read_log(path)
        t1 = time.perf_counter()
        report = analyze(run)
        t2 = time.perf_counter()
        parse.append(t1 - t0)
        total.append(t2 - t0)
    info = {
        "metrics": {n: len(s) for n, s in run.series.items()},
        "findings": [f"{f.severity} {f.kind} @ {f.step_start}" for f in report.findings],
    }
    return parse, total, info


def time_cli(path: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "toolkit.logs", "analyze", str(path), "--format", "json"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - t0)
    return times


def time_pandas_cli(path: Path, repeats: int) -> list[float]:
    """pandas in a fresh process too (import included), to set beside our CLI row."""
    code = f"import pandas; pandas.read_json({str(path)!r}, lines=True)"
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return times


def time_pandas(path: Path, repeats: int) -> list[float] | str:
    try:
        import pandas as pd
    except ImportError:
        return "pandas not installed: pip install pandas"
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame = pd.read_json(path, lines=True)
        times.append(time.perf_counter() - t0)
        assert len(frame) > 0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated log at this path")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--numpy", action="store_true", help="time the numpy path (no C)")
    args = parser.parse_args()

    if args.keep and args.keep.exists():
        path = args.keep
    else:
        path = args.keep or Path(tempfile.mkdtemp()) / "bench.jsonl"
        t0 = time.perf_counter()
        write_log(path, args.rows)
        print(
            f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
    from toolkit.logs.readers import jsonl

    if args.numpy:
        jsonl._accel = None
        os.environ["LABCOAT_JSONL_NO_C"] = "1"
    parse, total, info = time_ours(path, args.repeats)
    cli = time_cli(path, args.repeats)

    parser_used = "C accelerator (_jsonl_c)" if jsonl._accel is not None else "numpy (no C build)"
    pandas = "skipped (--no-pandas)" if args.no_pandas else time_pandas(path, args.repeats)
    fmt = lambda ts: ", ".join(f"{t:.2f}" for t in ts)  # noqa: E731
    print(
        f"rows: {args.rows:,} (+ eval rows), file {path.stat().st_size / 1e6:.0f} MB, cpus: {os.cpu_count()}"
    )
    print(f"JSONL block parser: {parser_used}, {jsonl._workers()} thread(s)")
    print(f"ours  parse (in-process)     : {fmt(parse)} s (best {min(parse):.2f})")
    print(f"ours  parse+analyze (in-proc): {fmt(total)} s (best {min(total):.2f}, goal <= 2 s)")
    print(f"ours  CLI analyze, new process: {fmt(cli)} s (best {min(cli):.2f}, goal <= 2 s)")
    pandas_cli: list[float] = []
    if isinstance(pandas, list):
        pandas_cli = time_pandas_cli(path, args.repeats)
        best, best_cli = min(pandas), min(pandas_cli)
        print(f"pandas read_json(lines=True), parse only: {fmt(pandas)} s (best {best:.2f})")
        print(
            f"pandas, new process (import + read_json): {fmt(pandas_cli)} s (best {best_cli:.2f})"
        )
        print(
            f"speed-up vs pandas (best vs best; goal >= 5x): in-process {best / min(total):.1f}x, "
            f"new process {best_cli / min(cli):.1f}x"
        )
    else:
        print(f"pandas: {pandas}")
    print(f"metrics: {info['metrics']}")
    print(f"findings: {info['findings']}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "rows": args.rows,
                    "file_mb": path.stat().st_size / 1e6,
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "parser": parser_used,
                    "ours_parse_s": parse,
                    "ours_total_s": total,
                    "ours_cli_s": cli,
                    "pandas_new_process_s": pandas_cli,
                    "pandas_read_json_s": pandas,
                    **info,
                },
                indent=2,
            )
            + "\n"
        )
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
