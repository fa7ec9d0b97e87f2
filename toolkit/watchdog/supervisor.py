"""Supervise one local training run: start, watch, classify every exit, restart or stop.

The loop polls every ``poll_s`` seconds (default 0.2 s): child alive?, new log bytes (steps,
NaN loss, baseline), new checkpoints (every ``scan_s``), hang timeout, background evals,
signals to the watchdog. After an exit it classifies, persists, and (for ``environment``)
restarts from the latest complete checkpoint after the policy's back-off; restart latency
(exit detected -> new child started, back-off excluded) is recorded per restart.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit import proctable
from toolkit.watchdog import checkpoints, process
from toolkit.watchdog.baseline import compare, load_baseline, parse_metrics
from toolkit.watchdog.catalogue import NUMERICAL, SUCCESS, patterns
from toolkit.watchdog.classify import (
    STEP_RE,
    Diagnosis,
    classify,
    diagnosis_from_dict,
    early_exit,
    native_crash_policy,
    repeated,
)
from toolkit.watchdog.disk import low_disk
from toolkit.watchdog.evaluate import EvalRunner
from toolkit.watchdog.hang import HangDetector
from toolkit.watchdog.policy import RestartPolicy, decide
from toolkit.watchdog.record import (
    RunDir,
    append_event,
    read_state,
    write_context,
    write_state,
)

TAIL_BYTES = 64 * 1024
NAN_PATTERN = next(p for p in patterns() if p.cls == NUMERICAL)

EXIT_FINISHED = 0
EXIT_STOPPED = 1


@dataclass
class Options:
    """Everything ``run`` needs; times in seconds."""

    run_dir: Path
    cmd: list[str]
    cwd: Path | None = None
    checkpoint_glob: str | None = None
    checkpoint_dir: Path | None = None
    required_files: tuple[str, ...] = ()
    resume_template: str | None = None
    resume_env: str | None = None
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    hang_timeout_s: float | None = None
    startup_grace_s: float = 600.0
    hang_factor: float = 10.0
    hang_min_s: float = 60.0
    poll_s: float = 0.2
    scan_s: float = 1.0
    kill_grace_s: float = 5.0
    eval_cmd: str | None = None
    eval_drain_s: float = 600.0
    baseline: Path | None = None
    tolerance: float = 0.1
    stop_on_nan: bool = True
    env: dict[str, str] = field(default_factory=dict)
    expect_steps: int | None = None  # the last step the run should log; exit 0 before = early
    final_checkpoint: str | None = None  # a path or glob the finished run must have written


class Supervisor:
    """One supervised run; :meth:`run` returns the exit code (0 finished, 1 stopped, 128+N signal)."""

    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.rd = RunDir(Path(opts.run_dir))
        self.rd.ensure()
        self.signal_received: int | None = None
        self.state: dict = {}
        self.evals = EvalRunner(opts.eval_cmd, self.rd.evals, opts.cwd) if opts.eval_cmd else None
        self.baseline = load_baseline(opts.baseline) if opts.baseline else None
        self.alerted: set[tuple[str, int]] = set()
        self.max_step: int | None = None  # highest step logged by the attempt being watched

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        write_state(self.rd, self.state)
        write_context(self.rd, self.state)

    def _event(self, kind: str, **fields) -> dict:
        return append_event(self.rd, kind, **fields)

    def _load_or_init(self) -> tuple[process.Attached | None, int | None]:
        """Resume persisted state; return a live child to re-attach to, if any."""
        old = read_state(self.rd)
        ckpts = [str(p) for p in checkpoints.find(self.o.checkpoint_glob, self.o.checkpoint_dir)]
        if old is None:
            self.state = {
                "cmd": self.o.cmd,
                "status": "starting",
                "attempt": 0,
                "restart_times": [],
                "evaluated": [],
                "preexisting": ckpts,
                "checkpoint": None,
                "last_diagnosis": None,
                "pid": None,
                "pgid": None,
                "started": time.time(),
            }
            self._event("watchdog_start", cmd=self.o.cmd, run_dir=str(self.rd.root), mode="new")
            return None, None
        self.state = old
        self.state["cmd"] = self.o.cmd
        pid, pgid, ticks = old.get("pid"), old.get("pgid"), old.get("start_ticks")
        watched = old.get("status") in ("running", "attached")
        if watched and pid and proctable.alive(pid, ticks):
            self._event("watchdog_start", mode="reattach", pid=pid, attempt=old.get("attempt"))
            self.state["status"] = "attached"
            return process.Attached(pid), pgid
        left = proctable.group_alive(pgid, ticks) if watched and pgid and ticks else []
        if left:  # the leader is gone but its group runs on: stop it before resuming
            proctable.kill_group(pgid)
            self._event("leftover_group_killed", pgid=pgid, pids=left)
        self._event(
            "watchdog_start",
            mode="resume",
            previous_status=old.get("status"),
            attempt=old.get("attempt"),
        )
        if old.get("status") in ("running", "attached", "restarting"):
            # the child died while no watchdog was watching: classify it from its log
            self.state["pending_exit"] = True
        return None, None

    # ------------------------------------------------------------------ children
    def _child_argv_env(self) -> tuple[list[str], dict[str, str], str | None]:
        choice = checkpoints.latest_complete(
            self.o.checkpoint_glob, self.o.checkpoint_dir, self.o.required_files
        )
        aside = self.state.setdefault("set_aside", {})
        for path, reason in choice.skipped:
            self._event(
                "checkpoint_skipped", checkpoint=path, reason=reason,
                kept="left in place, never deleted; resuming from an older one",
            )  # fmt: skip
            aside[path] = reason
        argv = list(self.o.cmd)
        env = {**os.environ, **self.o.env}
        ckpt = str(choice.path) if choice.path else None
        if ckpt:
            if self.o.resume_template:
                argv += [
                    a.replace("{checkpoint}", ckpt) for a in shlex.split(self.o.resume_template)
                ]
            if self.o.resume_env:
                env[self.o.resume_env] = ckpt
        self.state["checkpoint"] = ckpt
        return argv, env, ckpt

    def _spawn(self) -> subprocess.Popen:
        argv, env, ckpt = self._child_argv_env()
        self.state["attempt"] = int(self.state.get("attempt", 0)) + 1
        log = self.rd.attempt_log(self.state["attempt"])
        proc = process.start(argv, log, self.o.cwd, env)
        self.state.update(
            status="running", pid=proc.pid, pgid=proc.pid, log=str(log),
            attempt_started=time.time(), start_ticks=proctable.start_ticks(proc.pid),
        )  # fmt: skip
        self._event(
            "attempt_start",
            attempt=self.state["attempt"],
            pid=proc.pid,
            argv=argv,
            checkpoint=ckpt,
            log=str(log),
        )
        self._save()
        return proc

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, _frame) -> None:
        self.signal_received = signum

    def _install_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (tests calling run() in a thread)
                pass

    # ------------------------------------------------------------------ watching
    def _scan_checkpoints(
        self, seen: dict[str, tuple[int, float]], hang: HangDetector, now: float
    ) -> dict[str, tuple[int, float]]:
        snap = checkpoints.snapshot(self.o.checkpoint_glob, self.o.checkpoint_dir)
        if snap != seen:
            hang.activity(now)
        if self.evals is not None:
            done = set(self.state.get("evaluated", [])) | set(self.state.get("preexisting", []))
            for path in checkpoints.find(self.o.checkpoint_glob, self.o.checkpoint_dir):
                if str(path) in done or checkpoints.check(path, self.o.required_files) is not None:
                    continue
                self.state.setdefault("evaluated", []).append(str(path))
                self.evals.submit(str(path))
                self._event("eval_queued", checkpoint=str(path))
        return snap

    def _poll_evals(self) -> None:
        if self.evals is None:
            return
        for res in self.evals.poll():
            self._event("eval_done", **asdict(res))

    def _check_baseline(self, lines: list[str]) -> None:
        """Alert once per (metric, step) for the new ``step=N`` lines past the tolerance."""
        if self.baseline is None or not lines:
            return
        for alert in compare(parse_metrics("".join(lines)), self.baseline, self.o.tolerance):
            key = (alert.metric, alert.step)
            if key not in self.alerted:
                self.alerted.add(key)
                self._event("baseline_alert", **asdict(alert))

    def _watch(
        self, proc, pgid: int, log_path: Path
    ) -> tuple[int | None, bool, str, Diagnosis | None]:
        """Watch one attempt until it exits or is stopped; returns (returncode, hung, reason, forced)."""
        hang = HangDetector(
            self.o.hang_timeout_s, self.o.startup_grace_s, self.o.hang_factor, self.o.hang_min_s
        )
        now = time.monotonic()
        hang.start(now)
        self.max_step = None
        offset = (
            0
            if isinstance(proc, subprocess.Popen) or not log_path.exists()
            else log_path.stat().st_size
        )
        partial = ""
        seen = checkpoints.snapshot(self.o.checkpoint_glob, self.o.checkpoint_dir)
        next_scan = now + self.o.scan_s
        while True:
            rc = proc.poll()
            now = time.monotonic()
            # new log bytes
            try:
                size = log_path.stat().st_size
            except OSError:
                size = offset
            if size > offset:
                with open(log_path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read(size - offset).decode("utf-8", errors="replace")
                offset = size
                hang.output(now)
                text = partial + chunk
                lines = text.replace("\r", "\n").split("\n")
                partial = lines.pop()
                step_lines = []
                for line in lines:
                    hang.line(line, now)
                    steps = STEP_RE.findall(line)
                    if steps:
                        step = int(steps[-1])
                        hang.step(step, now)
                        self.max_step = max(step, self.max_step or step)
                        step_lines.append(line + "\n")
                    if self.o.stop_on_nan and rc is None and NAN_PATTERN.compiled.search(line):
                        process.stop_group(proc, pgid, self.o.kill_grace_s)
                        diag = classify(None, line)
                        diag.evidence.append("the watchdog stopped the run on this line")
                        return proc.poll(), False, "", diag
                self._check_baseline(step_lines)
            if rc is not None:
                process.signal_group(pgid, signal.SIGKILL)
                self._scan_checkpoints(seen, hang, now)  # a checkpoint saved just before exit
                return rc, False, "", None
            if now >= next_scan:
                seen = self._scan_checkpoints(seen, hang, now)
                next_scan = now + self.o.scan_s
            self._poll_evals()
            reason = hang.hung(now)
            if reason:
                self._event(
                    "hang_detected",
                    reason=reason,
                    pid=proc.pid,
                    idle_s=round(now - hang.last_activity, 3),
                    timeout_s=hang.current_timeout(),
                )
                process.stop_group(proc, pgid, min(self.o.kill_grace_s, 0.5))
                return proc.poll(), True, reason, None
            if self.signal_received is not None:
                return None, False, "", None
            time.sleep(self.o.poll_s)

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        self._install_signals()
        attached, pgid = self._load_or_init()
        proc = attached
        if proc is not None:
            pgid = pgid or proc.pid
        elif self.state.pop("pending_exit", False):
            log = Path(self.state.get("log") or self.rd.attempt_log(self.state.get("attempt", 1)))
            proc = None
            code = self._after_exit(
                process.recorded_returncode(log), False, "", None, log, reattached=True
            )
            if code is not None:
                return code
            proc = self._restart()
            pgid = proc.pid
        while True:
            if proc is None:
                proc = self._spawn()
                pgid = proc.pid
            log = Path(self.state["log"])
            rc, hung, reason, forced = self._watch(proc, pgid, log)
            if self.signal_received is not None:
                return self._forward_signal(proc, pgid)
            if isinstance(proc, process.Attached):
                rc = process.recorded_returncode(log)
            proc = None
            code = self._after_exit(rc, hung, reason, forced, log)
            if code is not None:
                return code
            if self.signal_received is not None:
                self._event(
                    "signal_received",
                    signal=signal.Signals(self.signal_received).name,
                    child="none running",
                )
                self.state["status"] = "interrupted"
                self._save()
                return 128 + self.signal_received
            proc = self._restart()
            pgid = proc.pid

    def _restart(self) -> subprocess.Popen:
        """Start the next attempt after a classified exit; record the restart latency (s)."""
        proc = self._spawn()
        latency = time.monotonic() - self._detected_at - self._backoff
        self._event(
            "restart",
            attempt=self.state["attempt"],
            latency_s=round(latency, 4),
            backoff_s=self._backoff,
            checkpoint=self.state.get("checkpoint"),
        )
        return proc

    def _after_exit(
        self,
        rc: int | None,
        hung: bool,
        reason: str,
        forced: Diagnosis | None,
        log: Path,
        reattached: bool = False,
    ) -> int | None:
        """Classify and record; return an exit code to stop, or None after sleeping the back-off."""
        self._detected_at = time.monotonic()
        self._backoff = 0.0
        tail = _tail(log)
        disk = "" if hung or forced or rc == 0 else low_disk(self._write_paths(log))
        diag = forced or classify(
            rc, tail, hung=hung, hang_reason=reason, low_disk=disk, unwatched=reattached
        )
        diag = repeated(diag, diagnosis_from_dict(self.state.get("last_diagnosis")))
        crashes = int(self.state.get("native_crashes", 0))
        diag = native_crash_policy(diag, crashes)
        if diag.subclass in ("sigsegv", "sigbus", "native-crash-repeated"):
            self.state["native_crashes"] = crashes + 1
        reached = max((s for s in (self.max_step, diag.step) if s is not None), default=None)
        diag = early_exit(diag, self.o.expect_steps, reached, self._missing_final())
        self.state["last_diagnosis"] = asdict(diag)
        self.state.update(pid=None, pgid=None)
        self._event(
            "exit",
            attempt=self.state.get("attempt"),
            returncode=rc,
            cls=diag.cls,
            subclass=diag.subclass,
            step=diag.step,
            restart=diag.restart,
            evidence=diag.evidence,
            meaning=diag.meaning,
        )
        if diag.cls == SUCCESS:
            return self._finish("finished", EXIT_FINISHED)
        if not diag.restart:
            return self._finish(
                "stopped", EXIT_STOPPED, f"{diag.cls}/{diag.subclass}: not restarted"
            )
        now = time.time()
        decision = decide(self.o.policy, self.state.get("restart_times", []), now)
        if not decision.restart:
            return self._finish("stopped", EXIT_STOPPED, decision.reason)
        self.state.setdefault("restart_times", []).append(now)
        self.state["status"] = "restarting"
        self._event("restart_scheduled", delay_s=decision.delay_s, reason=decision.reason)
        self._save()
        self._backoff = decision.delay_s
        deadline = time.monotonic() + decision.delay_s
        while time.monotonic() < deadline and self.signal_received is None:
            self._poll_evals()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return None

    def _write_paths(self, log: Path) -> list[Path]:
        """Where the run writes (checkpoints, logs, its working directory): probed for space."""
        paths = [log.parent, Path(self.o.cwd or ".")]
        if self.o.checkpoint_dir is not None:
            paths.append(Path(self.o.checkpoint_dir))
        if self.o.checkpoint_glob:
            paths.append(Path(self.o.checkpoint_glob).parent)
        return paths

    def _missing_final(self) -> str:
        """'' when no final checkpoint is expected or it is there and complete, else why not."""
        want = self.o.final_checkpoint
        if not want:
            return ""
        found = checkpoints.find(want)
        if not found:
            return f"expected final checkpoint {want} was not written"
        reason = checkpoints.check(found[-1], self.o.required_files)
        return f"final checkpoint {found[-1]} is incomplete: {reason}" if reason else ""

    def _finish(self, status: str, code: int, reason: str = "") -> int:
        self.state["status"] = status
        latest = checkpoints.latest_complete(
            self.o.checkpoint_glob, self.o.checkpoint_dir, self.o.required_files
        ).path
        self.state["latest_checkpoint"] = str(latest) if latest else None
        self._event("watchdog_stop", status=status, reason=reason)
        self._save()
        if self.evals is not None and self.evals.busy():
            for res in self.evals.drain(self.o.eval_drain_s):
                self._event("eval_done", **asdict(res))
            self._save()
        return code

    def _forward_signal(self, proc, pgid: int) -> int:
        sig = self.signal_received or signal.SIGTERM
        name = signal.Signals(sig).name
        self._event("signal_received", signal=name, forwarded_to_pgid=pgid)
        process.stop_group(proc, pgid, self.o.kill_grace_s, sig)
        self._event(
            "watchdog_stop",
            status="interrupted",
            reason=f"{name} forwarded to the run",
            returncode=proc.poll() if isinstance(proc, subprocess.Popen) else None,
        )
        self.state.update(status="interrupted", pid=None, pgid=None)
        self._save()
        return 128 + sig


def _tail(path: Path, nbytes: int = TAIL_BYTES) -> str:
    """The last ``nbytes`` bytes of ``path`` as text ('' when missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - nbytes))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run(opts: Options) -> int:
    """Supervise ``opts.cmd`` until it finishes or must stop; the exit code for the CLI."""
    return Supervisor(opts).run()
