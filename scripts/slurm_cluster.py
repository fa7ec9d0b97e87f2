"""A real one-node Slurm cluster in a temporary folder, for the tests and for trying labcoat.

    python scripts/slurm_cluster.py start [--dir DIR] [--nodes N] [--format json]  # SLURM_CONF=...
    python scripts/slurm_cluster.py stop --dir DIR
    python scripts/slurm_cluster.py status --dir DIR

``start`` installs Debian's ``slurm-wlm`` and ``munge`` with apt-get when the daemons are missing
(as root; ``apt-get update`` first; services are kept from starting during the install), writes a
munge key and a one-node ``slurm.conf`` under DIR (the machine's CPUs as ``slurmd -C`` reports
them, ``proctrack/linuxproc``, ``task/none``, ``select/cons_tres``, no accounting storage, free
TCP ports, every state and log file under DIR), starts ``munged``, ``slurmctld`` and ``slurmd``
in the foreground as detached processes, and waits until the node is idle. ``--nodes N`` (N > 1)
runs N ``slurmd`` on this host as nodes ``HOST-1``..``HOST-N`` (``slurmd -N``, each with its own
port and spool; NodeAddr 127.0.0.1), each with the machine's CPUs, for multi-node jobs. Clients
find the cluster through ``SLURM_CONF=DIR/slurm.conf``; nothing under /etc is read or written, so several
clusters (several test sessions) can run side by side. ``stop`` ends the three daemons by the
PIDs recorded in DIR/pids.json (SIGTERM, then SIGKILL after 10 s).

Exit codes: 0 ok; 1 the cluster did not come up (the daemon logs are named); 2 usage;
3 the packages are missing and cannot be installed here (not root, no apt-get, apt failed).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toolkit.watchdog.process import alive  # noqa: E402  (stdlib only; no venv needed)

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")
INSTALL_LOCK = Path(tempfile.gettempdir()) / "labcoat-slurm-install.lock"
POLICY_RC = Path("/usr/sbin/policy-rc.d")
EXIT_DOWN, EXIT_USAGE, EXIT_NO_PACKAGES = 1, 2, 3


class ClusterError(Exception):
    """The cluster could not be installed or started; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_DOWN) -> None:
        super().__init__(message)
        self.code = code


def _missing() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def ensure_packages(log: Path) -> float:
    """Install slurm-wlm and munge when any daemon or client is missing; seconds spent (0.0 when
    nothing was missing). One install at a time on this machine (a lock file)."""
    if not _missing():
        return 0.0
    if os.geteuid() != 0:
        raise ClusterError(
            f"Slurm is not installed ({', '.join(_missing())} missing) and installing "
            f"{' '.join(PACKAGES)} needs root",
            EXIT_NO_PACKAGES,
        )
    if shutil.which("apt-get") is None:
        raise ClusterError("Slurm is not installed and there is no apt-get here", EXIT_NO_PACKAGES)
    t0 = time.monotonic()
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _missing():  # another session installed them while we waited
            return time.monotonic() - t0
        # Keep the packages' init scripts from starting system-wide daemons during the install:
        # policy-rc.d exit 101 = "action forbidden" (only when no such file exists already).
        made_policy = False
        if not POLICY_RC.exists():
            POLICY_RC.write_text("#!/bin/sh\n# labcoat slurm_cluster.py: installing\nexit 101\n")
            POLICY_RC.chmod(0o755)
            made_policy = True
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            with open(log, "a") as out:
                for argv in (
                    ["apt-get", "update", "-q"],
                    [
                        "apt-get",
                        "install",
                        "-y",
                        "-q",
                        "--no-install-recommends",
                        "-o",
                        "DPkg::Lock::Timeout=300",
                        *PACKAGES,
                    ],
                ):
                    res = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
                    if res.returncode != 0:
                        raise ClusterError(
                            f"{' '.join(argv)} failed (exit {res.returncode}); see {log}",
                            EXIT_NO_PACKAGES,
                        )
        finally:
            if made_policy:
                POLICY_RC.unlink(missing_ok=True)
    if _missing():
        raise ClusterError(f"still missing after the install: {', '.join(_missing())}")
    return time.monotonic() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_line() -> str:
    """``NodeName=... CPUs=... RealMemory=...`` of this machine, from ``slurmd -C``."""
    res = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("NodeName=")), None)
    if res.returncode != 0 or line is None:
        raise ClusterError(f"slurmd -C printed no node line: {res.stderr.strip()[:300]}")
    return line.strip()


def write_config(root: Path, nodes: int = 1) -> tuple[Path, list[str]]:
    """munge key, state folders and slurm.conf under ``root``; (slurm.conf, node names)."""
    for sub in ("munge", "ctld", "spool"):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    node = node_line()
    host = node.split()[0].split("=", 1)[1]
    hardware = node.split(None, 1)[1]
    if nodes == 1:
        names = [host]
        node_lines = f"{node} NodeAddr=127.0.0.1 State=UNKNOWN"
    else:
        names = [f"{host}-{i}" for i in range(1, nodes + 1)]
        node_lines = "\n".join(
            f"NodeName={n} NodeHostname={host} NodeAddr=127.0.0.1 Port={_free_port()} {hardware} "
            "State=UNKNOWN"
            for n in names
        )
    conf = root / "slurm.conf"
    conf.write_text(
        f"""# one-node test cluster written by labcoat scripts/slurm_cluster.py
ClusterName=labcoat
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/ctld
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=3600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
{node_lines}
# MinJobAge: ended jobs stay visible to squeue/scontrol for an hour (a test suite's length)
# OverSubscribe: up to 4 jobs share a core, so short test jobs need not queue behind each other
PartitionName=debug Nodes={",".join(names)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
    )
    return conf, names


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> int:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def _wait(what: str, check, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{what} not reached in {timeout:g} s; see {', '.join(map(str, logs))}"
            )
        time.sleep(0.2)


def _ok(argv: list[str], env: dict[str, str]) -> str | None:
    try:
        res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def start(root: Path, timeout: float = 60.0, nodes: int = 1) -> dict:
    """Install if needed, configure and start the cluster in ``root``; a summary dict."""
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    install_s = ensure_packages(root / "install.log")
    conf, names = write_config(root, nodes)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pids: dict[str, int] = {}
    pid_file = root / "pids.json"

    def record() -> None:
        pid_file.write_text(json.dumps(pids))

    sock = root / "munge" / "munge.socket"
    try:
        pids["munged"] = _spawn(
            [
                _which("munged") or "munged",
                "--foreground",
                "--force",
                f"--key-file={root}/munge/munge.key",
                f"--socket={sock}",
                f"--pid-file={root}/munge/munged.pid",
                f"--log-file={root}/munge/munged.log",
                f"--seed-file={root}/munge/munged.seed",
            ],
            root / "munged.out",
            env,
        )
        record()
        _wait("munged socket", sock.exists, timeout, [root / "munged.out"])
        pids["slurmctld"] = _spawn(
            [_which("slurmctld") or "slurmctld", "-D", "-i", "-f", str(conf)],
            root / "slurmctld.out",
            env,
        )
        record()
        ctld_logs = [root / "slurmctld.out", root / "slurmctld.log"]
        _wait(
            "slurmctld answering ping",
            lambda: "is UP" in (_ok(["scontrol", "ping"], env) or ""),
            timeout,
            ctld_logs,
        )
        for name in names:
            argv = [_which("slurmd") or "slurmd", "-D", "-f", str(conf)]
            pids[f"slurmd {name}"] = _spawn(
                argv + (["-N", name] if nodes > 1 else []), root / f"slurmd-{name}.out", env
            )
            record()
        _wait(
            f"{nodes} node(s) idle",
            lambda: (_ok(["sinfo", "-h", "-N", "-o", "%t"], env) or "").split() == ["idle"] * nodes,
            timeout,
            [*(root / f"slurmd-{n}.out" for n in names), *ctld_logs],
        )
    except BaseException:
        stop(root)
        raise
    info = {
        "dir": str(root),
        "slurm_conf": str(conf),
        "pids": pids,
        "install_s": round(install_s, 2),
        "start_s": round(time.monotonic() - t0 - install_s, 2),
        "node": node_line(),
        "nodes": names,
    }
    (root / "cluster.json").write_text(json.dumps(info, indent=1))
    return info


def stop(root: Path, grace_s: float = 10.0) -> list[str]:
    """SIGTERM the daemons recorded in ``root``/pids.json (slurmd first), SIGKILL after
    ``grace_s``; the names of those that had to be killed."""
    try:
        pids: dict[str, int] = json.loads((root / "pids.json").read_text())
    except (OSError, ValueError):
        return []
    order = sorted(pids, key=lambda n: (not n.startswith("slurmd"), n == "munged"))
    for name in order:
        try:
            os.kill(pids[name], signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace_s
        while alive(pids[name]) and time.monotonic() < deadline:
            time.sleep(0.1)
    killed = []
    for name in order:
        if alive(pids[name]):
            os.kill(pids[name], signal.SIGKILL)
            killed.append(name)
    (root / "pids.json").unlink(missing_ok=True)
    return killed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/slurm_cluster.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("verb", choices=("start", "stop", "status"))
    parser.add_argument("--dir", type=Path, default=None, help="cluster folder (start: new temp)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per start phase")
    parser.add_argument("--nodes", type=int, default=1, help="slurmd nodes on this host (start)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.verb != "start" and args.dir is None:
        parser.error(f"{args.verb} needs --dir (the folder start printed)")
    try:
        if args.verb == "start":
            root = args.dir or Path(tempfile.mkdtemp(prefix="labcoat-slurm-"))
            if args.nodes < 1:
                parser.error(f"--nodes must be >= 1, got {args.nodes}")
            info = start(root.resolve(), args.timeout, args.nodes)
            if args.format == "json":
                print(json.dumps(info))
            else:
                print(f"SLURM_CONF={info['slurm_conf']}")
                print(
                    f"# up in {info['start_s']} s (install {info['install_s']} s); "
                    f"stop: python scripts/slurm_cluster.py stop --dir {root}",
                    file=sys.stderr,
                )
            return 0
        if args.verb == "stop":
            killed = stop(args.dir)
            if killed:
                print(f"killed after the grace period: {', '.join(killed)}", file=sys.stderr)
            return 0
        conf = args.dir / "slurm.conf"
        out = _ok(["sinfo", "-h", "-N", "-o", "%N %t"], {**os.environ, "SLURM_CONF": str(conf)})
        print(out.strip() if out else f"no cluster answers for {conf}")
        return 0 if out else EXIT_DOWN
    except ClusterError as exc:
        print(f"slurm_cluster: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
