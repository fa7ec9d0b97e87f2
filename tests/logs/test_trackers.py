"""MLflow file stores and W&B offline runs, written by the real libraries (offline), then read.

Each library writes its files in a child process, as a training script would. A test is
skipped only where its library is not installed (both are in the ``dev`` extra).
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from toolkit.logs.detectors import analyze
from toolkit.logs.readers import detect_format, read_log

MLFLOW_SCRIPT = """\
import mlflow
mlflow.set_tracking_uri("file:" + {root!r})
mlflow.set_experiment("sweep")
for name, lr in (("old", 0.5), ("new", 0.1)):
    with mlflow.start_run(run_name=name):
        mlflow.log_param("lr", lr)
        for step in range(40):
            mlflow.log_metric("train/loss", 2.0 * (1 - lr) ** step + 0.1, step=step)
            if step % 10 == 9:
                mlflow.log_metric("val_loss", 2.0 * (1 - lr) ** step + 0.2, step=step)
        if name == "new":
            mlflow.log_metric("train/loss", float("nan"), step=40)
"""

WANDB_SCRIPT = """\
import wandb
run = wandb.init(mode="offline", project="p", dir={root!r}, config={{"lr": 0.1}})
for step in range(40):
    run.log({{"train/loss": 2.0 * 0.9 ** step + 0.1, "lr": 0.1 * min(1, (step + 1) / 10),
              "val": {{"loss": 1.0}} if step % 10 == 9 else {{}}}}, step=step)
run.log({{"train/loss": float("nan")}}, step=40)
run.finish()
"""


ENV = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "WANDB_SILENT": "true",
       "WANDB_MODE": "offline", "WANDB_DISABLE_GIT": "true"}  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both libraries write at once (two processes: most of their time is importing)."""
    jobs, out = {}, {}
    for library, script in (("mlflow", MLFLOW_SCRIPT), ("wandb", WANDB_SCRIPT)):
        if importlib.util.find_spec(library) is None:
            continue
        root = tmp_path_factory.mktemp(library)
        target = root / "mlruns" if library == "mlflow" else root
        target.mkdir(exist_ok=True)
        code = textwrap.dedent(script.format(root=str(target)))
        jobs[library] = subprocess.Popen([sys.executable, "-c", code], cwd=target, env=ENV)
        out[library] = target if library == "mlflow" else root / "wandb"
    for library, proc in jobs.items():
        assert proc.wait(timeout=120) == 0, f"{library} failed to write its files"
    return out


def need(written: dict[str, Path], library: str) -> Path:
    if library not in written:
        pytest.skip(f"{library} not installed (pip install 'labcoat[{library}]')")
    return written[library]


@pytest.fixture
def mlruns(written: dict[str, Path]) -> Path:
    return need(written, "mlflow")


@pytest.fixture
def wandb_dir(written: dict[str, Path]) -> Path:
    return need(written, "wandb")


def test_mlflow_store_latest_run_and_run_folder(mlruns: Path) -> None:
    before = sorted(p.relative_to(mlruns) for p in mlruns.rglob("*"))
    assert detect_format(mlruns) == "mlflow"
    run = read_log(mlruns)
    assert run.format == "mlflow" and "2 runs" in run.warnings[0]
    loss = run.series["train/loss"]
    assert loss.steps.tolist() == list(range(41)) and math.isnan(loss.values[-1])
    assert loss.values[1] == pytest.approx(2.0 * 0.9 + 0.1)  # the "new" run (lr 0.1), started last
    assert run.roles["val_loss"] == "val_loss" and run.series["val_loss"].steps.tolist() == [
        9,
        19,
        29,
        39,
    ]
    kinds = [f.kind for f in analyze(run).findings]
    assert "nan_inf" in kinds
    # a run folder picks that run: the "old" one has no NaN
    folders = [p for p in mlruns.glob("*/*") if (p / "metrics").is_dir()]
    old = [p for p in folders if (p / "params" / "lr").read_text().strip() == "0.5"][0]
    old_run = read_log(old)
    assert not old_run.warnings and old_run.series["train/loss"].values[1] == pytest.approx(1.1)
    assert sorted(p.relative_to(mlruns) for p in mlruns.rglob("*")) == before  # nothing written


def test_wandb_offline_run(wandb_dir: Path) -> None:
    run_dir = next(wandb_dir.glob("offline-run-*"))
    for path in (wandb_dir, run_dir, next(run_dir.glob("run-*.wandb"))):
        assert detect_format(path) == "wandb"
    run = read_log(wandb_dir)
    loss = run.series["train/loss"]
    assert loss.steps.tolist() == list(range(41)) and math.isnan(loss.values[-1])
    assert loss.values[0] == pytest.approx(2.1)
    assert run.series["val.loss"].steps.tolist() == [9, 19, 29, 39]
    assert run.roles["train_loss"] == "train/loss" and run.roles["lr"] == "lr"
    assert "nan_inf" in [f.kind for f in analyze(run).findings]


def test_not_a_tracker_folder_is_an_input_error(tmp_path: Path) -> None:
    from toolkit.errors import InputError

    with pytest.raises(InputError, match="MLflow store"):
        detect_format(tmp_path)
