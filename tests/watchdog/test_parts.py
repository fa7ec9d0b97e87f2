"""Policy, hang detector, baseline comparison, eval metrics parsing, record files."""

from __future__ import annotations

import json
import sys
import time

from toolkit.watchdog.baseline import compare, load_baseline, parse_metrics
from toolkit.watchdog.evaluate import EvalRunner, parse_eval_metrics
from toolkit.watchdog.hang import HangDetector
from toolkit.watchdog.policy import RestartPolicy, decide
from toolkit.watchdog.record import RunDir, append_event, read_events, write_context, write_state


def test_backoff_doubles_and_window_caps():
    pol = RestartPolicy(max_restarts=3, window_s=100, base_s=1, max_backoff_s=3)
    assert decide(pol, [], 0).delay_s == 1
    assert decide(pol, [0], 1).delay_s == 2
    assert decide(pol, [0, 1], 2).delay_s == 3  # capped
    stop = decide(pol, [0, 1, 2], 3)
    assert not stop.restart and "limit 3" in stop.reason
    assert decide(pol, [0, 1, 2], 500).restart  # old restarts left the window


def test_hang_timeout_from_step_time_with_grace():
    h = HangDetector(timeout_s=None, startup_grace_s=30, factor=10, min_timeout_s=5)
    h.start(0)
    assert h.current_timeout() == 30 and h.hung(29) is None and h.hung(31)
    h.start(0)
    for i in range(5):
        h.step(i, 10 + i * 2.0)  # 2 s per step
    assert h.current_timeout() == 20
    assert h.hung(18 + 19) is None and "timeout 20.0 s" in h.hung(18 + 21)
    h.activity(40)
    assert h.hung(50) is None


def test_baseline_alerts_past_tolerance(tmp_path):
    run = parse_metrics("step=1 loss=2.0\nstep=2 loss=1.5 lr=0.1\nnoise\nstep=3 loss=nan\n")
    assert run["loss"][2] == 1.5 and run["lr"][2] == 0.1
    base_file = tmp_path / "base.json"
    base_file.write_text(json.dumps({"loss": {"1": 2.0, "2": 1.0, "3": 0.9}}))
    alerts = compare(run, load_baseline(base_file), 0.1)
    assert [(a.metric, a.step) for a in alerts] == [("loss", 2), ("loss", 3)]
    log = tmp_path / "base.log"
    log.write_text("step=1 loss=2.1\n")
    assert compare(run, load_baseline(log), 0.1) == []


def test_eval_metrics_json_or_key_value():
    assert parse_eval_metrics('noise\n{"acc": 0.9, "name": "x"}\n') == {"acc": 0.9}
    assert parse_eval_metrics("eval_loss=1.25 acc=0.5\n") == {"eval_loss": 1.25, "acc": 0.5}


def test_eval_runner_runs_in_background(tmp_path):
    runner = EvalRunner(
        f"{sys.executable} -c \"import time,sys; time.sleep(0.3); print('acc=0.75', sys.argv[1])\" {{checkpoint}}",
        tmp_path,
    )
    runner.submit("ck-1")
    t0 = time.monotonic()
    assert runner.poll() == []  # started, not waited for
    assert time.monotonic() - t0 < 0.25
    (res,) = runner.drain(60)
    assert res.returncode == 0 and res.metrics == {"acc": 0.75} and res.checkpoint == "ck-1"


def test_record_files(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.ensure()
    append_event(rd, "exit", cls="code", value=float("nan"))
    with open(rd.events, "a") as fh:
        fh.write('{"torn')  # a crash mid-write must not break reading
    assert read_events(rd)[0]["value"] == "nan"
    state = {
        "cmd": ["python", "t.py"],
        "status": "stopped",
        "attempt": 1,
        "restart_times": [],
        "last_diagnosis": {
            "cls": "code",
            "subclass": "python-exception",
            "meaning": "m",
            "restart": False,
            "evidence": ["TypeError: x"],
            "action": "fix it",
        },
    }
    write_state(rd, state)
    write_context(rd, state)
    text = rd.context.read_text()
    assert "code / python-exception" in text and "Fix it" in text and "TypeError: x" in text
