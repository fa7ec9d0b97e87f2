"""Start-up of the MCP server: process spawn to the first ``initialize`` answered.

    python bench/mcp_startup.py [--repeats 10] [--out bench/results/mcp_startup.json]

Each repeat spawns ``python -m toolkit.mcp``, writes one JSON-RPC ``initialize`` request on its
stdin at once (as a client does) and times the answer on stdout; then sends ``initialized`` and
``tools/list`` and times that answer too (the tool table is built on first use: every command's
parser is imported, in a worker thread). For scale it also times a bare interpreter and
``import toolkit.mcp.server`` (the SDK's import). The server's CPU time (user + system, from
/proc) when it answers ``initialize`` is the figure that does not depend on how busy the
machine is: on an idle core, wall time is about that. The client side is raw pipes, no SDK, so the
client's own imports are not counted. Goal: first ``initialize`` under 1 s. Prints a table;
writes JSON. Not a test: it asserts nothing.

The same start through the plugin's launcher (``bin/labcoat mcp``, as Claude Code starts it) is
timed too, with labcoat's environment already built (in ``.labcoat/launcher-home``, as the
plugin tests leave it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.cli import render_table  # noqa: E402

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}


def _send(proc: subprocess.Popen, message: dict) -> None:
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def _answer(proc: subprocess.Popen, request_id: int) -> dict:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        message = json.loads(line)
        if message.get("id") == request_id:
            return message


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LAUNCHER = ROOT / "bin" / "labcoat"
LAUNCHER_HOME = ROOT / ".labcoat" / "launcher-home"  # the plugin tests' labcoat environment


def one_start(launcher: bool = False) -> dict[str, float]:
    cmd = [str(LAUNCHER), "mcp"] if launcher else [sys.executable, "-m", "toolkit.mcp"]
    env = {**os.environ, "LABCOAT_HOME": str(LAUNCHER_HOME)} if launcher else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        _send(proc, INITIALIZE)
        init = _answer(proc, 1)
        t_init = time.perf_counter() - t0
        cpu_init = _cpu_s(proc.pid)
        assert "result" in init, init
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = _answer(proc, 2)["result"]["tools"]
        t_list = time.perf_counter() - t0
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return {"initialize_s": t_init, "initialize_cpu_s": cpu_init, "tools_list_s": t_list,
            "tools": len(tools)}  # fmt: skip


def _wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mcp_startup.json")
    args = p.parse_args()
    one_start()  # warm the bytecode caches
    runs = [one_start() for _ in range(args.repeats)]
    one_start(launcher=True)  # builds labcoat's environment if it is not there yet
    via = [one_start(launcher=True) for _ in range(args.repeats)]
    bare = [_wall("pass") for _ in range(args.repeats)]
    sdk = [_wall("import toolkit.mcp.server") for _ in range(args.repeats)]
    series = {
        "interpreter alone (s)": bare,
        "import toolkit.mcp.server, SDK included (s)": sdk,
        "spawn -> initialize answered (s)": [r["initialize_s"] for r in runs],
        "server CPU until initialize answered (s)": [r["initialize_cpu_s"] for r in runs],
        "spawn -> tools/list answered (s)": [r["tools_list_s"] for r in runs],
        "bin/labcoat mcp: spawn -> initialize answered (s)": [r["initialize_s"] for r in via],
        "bin/labcoat mcp: server CPU until initialize (s)": [r["initialize_cpu_s"] for r in via],
    }
    rows = [
        [name, f"{statistics.median(v):.3f}", f"{min(v):.3f}", f"{max(v):.3f}"]
        for name, v in series.items()
    ]
    print(render_table(["measure", "median", "min", "max"], rows))
    print(f"\ntools listed: {runs[0]['tools']}; load average: {os.getloadavg()[0]:.2f}")
    result = {
        "repeats": args.repeats,
        "series": series,
        "tools": runs[0]["tools"],
        "loadavg_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
