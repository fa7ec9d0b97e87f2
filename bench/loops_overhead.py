"""Per-round toolkit overhead of ``toolkit.loops`` autoresearch on a repo with 10,000 files.

    python bench/loops_overhead.py [--files 10000] [--rounds 20] [--out bench/results/loops_overhead.json]

Builds a temporary git repo (``--files`` tracked files in 100 folders, 100 untracked user files,
an ignored checkpoints/ folder), runs ``init`` and then ``--rounds`` real rounds through
``judge_round``, alternating an improvement (committed) and a regression (rolled back, with a
new Variable file to remove). Each round the simulated researcher edits 2 Variable files.
The eval is ``cat metric.txt``; its time is measured and subtracted.

Phases (from the judge's step hook): ``load`` (state + recovery check), ``compliance`` (git
status, glob matching, journal), ``git`` (commit or rollback, with trash copies), ``records``
(results.tsv, experiences.md, state.json with the untracked snapshot; for a commit also the
post-commit status). ``cli`` rows: whole rounds through ``python -m toolkit.loops``
(interpreter start, imports, lock), eval subtracted. Goal: total <= 0.5 s
per round on a 2-core machine. Prints a table; writes JSON. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
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
from toolkit.loops import autoresearch, judge, recovery  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost",
}  # fmt: skip


def build_repo(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        d = root / "src" / f"pkg{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i % 100:03d}.py").write_text(f"# module {i}\nVALUE = {i}\n")
    (root / "eval.sh").write_text("cat metric.txt\n")
    (root / "metric.txt").write_text("metric=100\n")
    (root / ".gitignore").write_text("checkpoints/\n")
    (root / "autoresearch-protocol.md").write_text(
        "---\nname: bench\nquestion: overhead\n"
        "metric: {name: metric, direction: minimize, regex: 'metric=(\\S+)'}\n"
        "fixed_files: [eval.sh, 'src/pkg05*/**']\n"
        "variable_files: [metric.txt, 'src/pkg00*/**']\n"
        "eval_command: sh eval.sh\ntime_limit_s: 30\nmax_rounds: 100000\n"
        "plateau: {rounds: 100000}\n---\n"
    )
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "init"], check=True, env=env)
    (root / "notes").mkdir()
    for i in range(100):
        (root / "notes" / f"user{i}.txt").write_text("user file\n")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "ckpt.bin").write_bytes(b"\0" * 1024)


def one_round(root: Path, rnd: int, improve: bool) -> dict[str, float]:
    value = 100 - rnd if improve else 1000 + rnd
    (root / "metric.txt").write_text(f"metric={value}\n")
    (root / "src" / "pkg000" / f"mod{rnd % 100:03d}.py").write_text(f"VALUE = {rnd}  # edited\n")
    if not improve:
        (root / "src" / "pkg001" / f"new{rnd}.py").write_text("NEW = 1\n")
    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    run = judge.load_run(root, None)
    recovery.recover(run)
    marks["loaded"] = time.perf_counter()
    res = judge.judge_round(
        run, f"round {rnd}", "bench", hook=lambda s: marks.setdefault(s, time.perf_counter())
    )
    t_end = time.perf_counter()
    git_done = marks.get("committed") or marks["rolled_back"]
    # the commit path also restores tracked files touched by train after 'committed'; count it as git
    return {
        "load": marks["loaded"] - t0,
        "compliance": marks["started"] - marks["loaded"],
        "eval_excluded": marks["evaluated"] - marks["started"],
        "git": git_done - marks["before_git"],
        "records": marks["recorded"] - git_done,
        "total_overhead": (t_end - t0) - (marks["evaluated"] - marks["started"]),
        "outcome": res.outcome,
    }


def cli_round(root: Path, rnd: int, improve: bool) -> dict[str, float]:
    """One round through ``python -m toolkit.loops autoresearch judge``: adds interpreter start,
    imports, the run lock and argument parsing. Eval time (from the JSON) is subtracted."""
    (root / "metric.txt").write_text(f"metric={100 - rnd if improve else 1000 + rnd}\n")
    (root / "src" / "pkg000" / f"mod{rnd % 100:03d}.py").write_text(f"VALUE = {rnd}  # cli\n")
    cmd = [sys.executable, "-m", "toolkit.loops", "autoresearch", "judge", "--strategy", f"cli {rnd}",
           "--repo", str(root), "--format", "json"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    res = json.loads(proc.stdout)
    return {"wall_s": wall, "eval_s": res["duration_s"], "overhead_s": wall - res["duration_s"],
            "outcome": res["outcome"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cli-rounds", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/loops_overhead.json")
    args = ap.parse_args()
    os.environ.update(GIT_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        t = time.perf_counter()
        build_repo(root, args.files)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        autoresearch.init(root / "autoresearch-protocol.md", root)
        init_s = time.perf_counter() - t
        rounds = [one_round(root, r, improve=(r % 2 == 1)) for r in range(1, args.rounds + 1)]
        cli = [
            cli_round(root, args.rounds + r, improve=(r % 2 == 1))
            for r in range(1, args.cli_rounds + 1)
        ]
    phases = ["load", "compliance", "git", "records", "total_overhead", "eval_excluded"]
    summary = {}
    rows = []
    for outcome in ("improved", "not_improved"):
        sel = [r for r in rounds if r["outcome"] == outcome]
        for ph in phases:
            vals = sorted(r[ph] for r in sel)
            stats = {"median_s": statistics.median(vals), "max_s": vals[-1], "n": len(vals)}
            summary[f"{outcome}.{ph}"] = stats
            rows.append(
                (
                    outcome,
                    ph,
                    f"{stats['median_s'] * 1000:.1f}",
                    f"{stats['max_s'] * 1000:.1f}",
                    len(vals),
                )
            )
    for outcome in ("improved", "not_improved"):
        vals = sorted(r["overhead_s"] for r in cli if r["outcome"] == outcome)
        if vals:
            stats = {"median_s": statistics.median(vals), "max_s": vals[-1], "n": len(vals)}
            summary[f"cli.{outcome}.total_overhead"] = stats
            rows.append((f"cli {outcome}", "total_overhead", f"{stats['median_s'] * 1000:.1f}",
                         f"{stats['max_s'] * 1000:.1f}", len(vals)))  # fmt: skip
    print(
        f"repo: {args.files} tracked files, 100 untracked user files; build {build_s:.1f} s, init {init_s:.2f} s"
    )
    print(render_table(("outcome", "phase", "median ms", "max ms", "rounds"), rows))
    worst = max(summary[f"{o}.total_overhead"]["median_s"] for o in ("improved", "not_improved"))
    cli_worst = max(
        (v["median_s"] for k, v in summary.items() if k.startswith("cli.")), default=None
    )
    print(
        f"\nper-round overhead (median, worse outcome): {worst * 1000:.0f} ms; goal <= 500 ms: {'met' if worst <= 0.5 else 'MISSED'}"
    )
    if cli_worst is not None:
        print(
            f"through the CLI (python start + imports + lock included): {cli_worst * 1000:.0f} ms"
        )
    result = {
        "files": args.files, "rounds": args.rounds, "init_s": init_s, "summary": summary, "per_round": rounds, "cli_rounds": cli,
        "goal_s": 0.5, "worst_median_overhead_s": worst, "cli_worst_median_overhead_s": cli_worst, "machine": platform.platform(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
