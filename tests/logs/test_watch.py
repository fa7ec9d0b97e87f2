"""logs watch on a log a real writer process grows: NaN reported within 2 s, spikes once each,
the watch ends with the training process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

WRITER = """\
import json, math, os, sys, time
path, nan_at, spike_at, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
while not os.path.exists(path + ".go"):  # start when the test says so
    time.sleep(0.01)
with open(path, "a") as f:
    for step in range(steps):
        loss = 3.0 * math.exp(-step / 200) + 0.5 + 0.01 * math.sin(step)
        if step == spike_at:
            loss *= 8
        if step == nan_at:
            loss = float("nan")
        f.write(json.dumps({"step": step, "loss": loss, "lr": 1e-3}) + "\\n")
        f.flush()
        if step == nan_at:
            print(f"wrote {time.time()}", flush=True)
        time.sleep(0.01)
"""


def start_watch(path: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "toolkit.logs", "watch", str(path), "--format", "json",
           "--interval", "0.5", "--max-s", "60", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())  # the watcher is up before anything is written
    assert first["event"] == "watching"
    return proc


def events(proc: subprocess.Popen) -> list[dict]:
    out, _ = proc.communicate(timeout=60)
    return [json.loads(line) for line in out.splitlines()]


def test_nan_reported_within_two_seconds(tmp_path: Path) -> None:
    log = tmp_path / "train.jsonl"
    watcher = start_watch(log, "--exit-on-error")
    Path(f"{log}.go").touch()
    writer = subprocess.run([sys.executable, "-c", WRITER, str(log), "150", "-1", "151"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    written = float(writer.stdout.split()[1])
    got = events(watcher)
    assert watcher.returncode == 1
    nan = [e for e in got if e["event"] == "finding" and e["finding"]["kind"] == "nan_inf"]
    assert len(nan) == 1 and nan[0]["finding"]["step_start"] == 150
    lag = nan[0]["detected_at"] - written
    assert 0 <= lag < 2.0, f"NaN reported {lag:.2f} s after it was written"
    assert got[-1]["event"] == "end" and "exit-on-error" in got[-1]["reason"]


def test_spike_reported_once_and_watch_ends_with_the_process(tmp_path: Path) -> None:
    log = tmp_path / "train.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), "-1", "100", "200"],
                              stdout=subprocess.DEVNULL)  # fmt: skip
    watcher = start_watch(log, "--pid", str(writer.pid))
    Path(f"{log}.go").touch()
    t0 = time.monotonic()
    writer.wait()
    got = events(watcher)
    assert watcher.returncode in (0, 1)
    spikes = [e for e in got if e["event"] == "finding" and e["finding"]["kind"] == "loss_spike"]
    assert [e["finding"]["step_start"] for e in spikes] == [100]
    assert not spikes[0]["final"]  # seen live, while the writer still ran
    end = got[-1]
    assert end["event"] == "end" and end["reason"] == f"process {writer.pid} exited"
    assert end["passes"] >= 2 and time.monotonic() - t0 < 10


def test_new_lines_scanned_for_nan_without_a_full_pass(tmp_path: Path) -> None:
    from toolkit.logs.watch import Tail, nonfinite_in

    log = tmp_path / "train.log"
    log.write_text("step=1 loss=2.0\nstep=2 loss=nan grad_norm=inf\n")
    tail = Tail(log)
    found = {f.metric: f for f in nonfinite_in(tail.lines())}
    assert found["loss"].step_start == 2 and found["loss"].severity == "error"
    assert found["grad_norm"].evidence["first_value"] == "inf"
    with log.open("a") as f:
        f.write('{"step": 3, "loss": 1.0, "acc": NaN}\n{"step": 4, "lo')  # last line unfinished
    (acc,) = nonfinite_in(tail.lines())
    assert (acc.metric, acc.step_start, acc.severity) == ("acc", 3, "warning")
    assert tail.lines() == []  # nothing new until the line is finished
