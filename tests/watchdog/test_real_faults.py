"""Faults real runs have (issue 19): output without progress, corrupt checkpoints of full size,
a process group that died while no watchdog watched, a full disk without "No space" text,
native crashes, an exit 0 before the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import torch

from tests.watchdog.conftest import fault_env, read_events, run_watchdog, watchdog_argv
from toolkit.errors import InputError
from toolkit.watchdog.baseline import load_baseline
from toolkit.watchdog.checkpoints import check, latest_complete
from toolkit.watchdog.classify import classify, early_exit, native_crash_policy
from toolkit.watchdog.disk import low_disk
from toolkit.watchdog.hang import HangDetector


def _wait_for(cond, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ----------------------------------------------------------------------------- hang = no progress


def test_output_without_progress_is_a_hang():
    h = HangDetector(timeout_s=5, startup_grace_s=30)
    h.start(0)
    for i in range(3):
        h.line(f"step={i} loss={1.0 / (i + 1):.3f}", float(i))
        h.step(i, float(i))
    for t in range(3, 20):  # a heartbeat, the same step line, a stuck progress bar: output only
        h.output(float(t))
        for line in ("heartbeat: trainer alive", "step=2 loss=0.333", " 25%|##  | 2/8 [00:03<"):
            h.line(line, float(t))
    reason = h.hung(8.5)
    assert reason and "no training progress" in reason and "output without progress" in reason
    h.line("step=3 loss=0.25", 9.0)
    h.step(3, 9.0)
    assert h.hung(13.0) is None  # a new step is progress


def test_new_metric_or_checkpoint_is_progress():
    h = HangDetector(timeout_s=5, startup_grace_s=30)
    h.start(0)
    h.step(1, 0.0)
    h.step(2, 1.0)
    h.line("eval: val_loss=1.25", 4.0)
    assert h.hung(8.0) is None
    h.activity(12.0)  # a checkpoint changed
    assert h.hung(16.0) is None and h.hung(17.5)


# ----------------------------------------------------------------------------- checkpoints


def _save(path: Path, step: int = 4) -> Path:
    torch.save({"model": torch.nn.Linear(8, 1).state_dict(), "step": step}, path)
    return path


def test_full_size_corrupt_checkpoints_are_rejected_and_kept(tmp_path):
    good = _save(tmp_path / "checkpoint-2.pt", 2)
    random_bytes = tmp_path / "checkpoint-4.pt"
    random_bytes.write_bytes(os.urandom(good.stat().st_size))
    assert "not a torch checkpoint" in check(random_bytes)
    flipped = _save(tmp_path / "checkpoint-6.pt", 6)
    data = bytearray(flipped.read_bytes())
    with zipfile.ZipFile(flipped) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data/0"))
    h = info.header_offset
    at = h + 30 + int.from_bytes(data[h + 26 : h + 28], "little")
    at += int.from_bytes(data[h + 28 : h + 30], "little")
    data[at] ^= 0xFF
    flipped.write_bytes(bytes(data))
    torch.load(flipped, weights_only=True)  # torch itself loads the corrupt weights silently
    assert "CRC-32" in check(flipped)
    choice = latest_complete(str(tmp_path / "checkpoint-*.pt"))
    assert choice.path == good
    assert [Path(p).name for p, _ in choice.skipped] == ["checkpoint-6.pt", "checkpoint-4.pt"]
    assert random_bytes.exists() and flipped.exists()  # nothing deleted
    legacy = tmp_path / "legacy.pt"
    torch.save({"a": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    assert check(legacy) is None


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(work):
    res = run_watchdog(work, "corrupt_ckpt", 5)
    assert res.rc == 0, res.stderr
    skipped = res.of("checkpoint_skipped")
    assert skipped and skipped[0]["checkpoint"].endswith("checkpoint-5.pt")
    assert (
        "not a torch checkpoint" in skipped[0]["reason"] and "never deleted" in skipped[0]["kept"]
    )
    assert res.of("attempt_start")[1]["checkpoint"].endswith("checkpoint-4.pt")
    assert (work / "ckpt" / "checkpoint-5.pt").exists()
    context = (res.run_dir / "experiment-context.md").read_text()
    assert "Checkpoints set aside" in context and "checkpoint-5.pt" in context


# ----------------------------------------------------------------------------- classification


def test_native_crash_restarts_once_then_is_code():
    first = classify(-signal.SIGSEGV, "step=4 loss=1\n")
    assert (first.cls, first.subclass, first.restart) == ("environment", "sigsegv", True)
    assert classify(128 + signal.SIGBUS, "").subclass == "sigbus"
    second = native_crash_policy(classify(-signal.SIGSEGV, "step=9 loss=1\n"), 1)
    assert (second.cls, second.subclass, second.restart) == ("code", "native-crash-repeated", False)


def test_exit_0_before_the_expected_end_is_not_finished():
    done = classify(0, "step=5 loss=1\n")
    early = early_exit(done, 30, 5)
    assert (early.cls, early.subclass, early.restart) == ("unknown", "exited-early", False)
    assert "last logged step 5, expected 30" in early.evidence
    assert early_exit(classify(0, "step=30\n"), 30, 30).cls == "success"
    assert early_exit(done, None, 5, "expected final checkpoint final.pt was not written").cls == (
        "unknown"
    )


def test_unwatched_death_restarts_and_low_disk_wins_over_message():
    diag = classify(None, "step=3 loss=1\n", unwatched=True)
    assert (diag.cls, diag.subclass, diag.restart) == ("environment", "died-unwatched", True)
    text = "RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534\n"
    assert classify(1, text).subclass != "disk-full"
    diag = classify(1, text, low_disk="disk full (measured by the watchdog) on /ckpt: 0 of 65536")
    assert (diag.cls, diag.subclass, diag.restart) == ("resources", "disk-full", False)
    assert "measured by the watchdog" in diag.evidence[0]
    assert classify(1, "OSError: ENOSPC while writing shard\n").subclass == "disk-full"


def test_low_disk_measures_a_real_full_filesystem(tmp_path):
    assert low_disk([tmp_path]) == ""  # this disk has room
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with pytest.raises(OSError), open(mnt / "fill", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        assert "disk full" in low_disk([mnt / "checkpoints-not-made-yet"])
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize(
    "content, suffix, what",
    [
        (b"\x00\x01\x02binary", ".json", "binary file"),
        (b"- 1\n- 2\n", ".yaml", "holds a list"),
        (b"{not json", ".json", "not valid JSON"),
        (b"loss: [1, 2]\n", ".yml", "not a step -> number mapping"),
    ],
)
def test_bad_baseline_is_an_input_error(tmp_path, content, suffix, what):
    path = tmp_path / f"base{suffix}"
    path.write_bytes(content)
    with pytest.raises(InputError, match=what):
        load_baseline(path)


# ----------------------------------------------------------------------------- end to end


def test_deadlocked_trainer_printing_heartbeats_is_hung_and_restarted(work):
    res = run_watchdog(work, "heartbeat_deadlock", 3, True, "--hang-timeout", "3")
    assert res.rc == 0, res.stderr
    first = res.exits()[0]
    assert (first["cls"], first["subclass"]) == ("environment", "hang")
    assert "output without progress" in res.of("hang_detected")[0]["reason"]
    assert "heartbeat: trainer alive" in (res.run_dir / "logs" / "attempt-001.log").read_text()


def test_reattach_to_a_dead_group_resumes_from_its_checkpoint(work):
    argv = watchdog_argv(work)
    env = {**fault_env(work, "pause", 5), "FAULT_PAUSE_FILE": str(work / "paused")}
    env["FAULT_PAUSE_S"] = "60"
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for((work / "paused").exists)
    first.kill()
    first.wait()
    pgid = json.loads((work / "run" / "state.json").read_text())["pgid"]
    os.killpg(pgid, signal.SIGKILL)  # the whole group dies while no watchdog watches
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, cwd=work)
    assert second.returncode == 0, second.stderr
    events = read_events(work / "run")
    (exit_event, done) = [e for e in events if e["event"] == "exit"]
    assert (exit_event["cls"], exit_event["subclass"]) == ("environment", "died-unwatched")
    restart = [e for e in events if e["event"] == "restart"]
    assert restart and restart[0]["checkpoint"].endswith("checkpoint-4.pt")
    assert done["cls"] == "success"


def test_exit_0_early_with_expected_steps_stops(work):
    res = run_watchdog(work, "exit0", 3, True, "--expect-steps", "8")
    assert res.rc == 1, res.stderr
    (only,) = res.exits()
    assert (only["cls"], only["subclass"], only["restart"]) == ("unknown", "exited-early", False)
