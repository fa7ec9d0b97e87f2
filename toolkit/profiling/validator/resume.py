"""Resume equivalence: does training continue after a checkpoint exactly as it would have?

Here: build the spec, train ``k`` steps, ``save_checkpoint``, train ``m`` more (the uninterrupted
run). In a fresh process (``python -m toolkit.profiling.validator.resume``): build the spec again,
``load_checkpoint``, train ``m`` steps. The two sequences of ``m`` losses must agree: exactly on a
CPU (same process settings, deterministic kernels), within ``CUDA_RTOL`` on a GPU. A scheduler,
RNG, sampler or data-loader position the checkpoint forgets shows up as a different loss, which
"identical outputs after reload" cannot see.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from toolkit.errors import InputError
from toolkit.profiling.spec import TrainSpec, batch_source, load_entry, parse_device
from toolkit.profiling.validator.checks import Check
from toolkit.profiling.validator.runtime import _Run, model_device

CUDA_RTOL = 1e-3  # relative tolerance for GPU runs (nondeterministic reductions)
CHILD_TIMEOUT_S = 600


@dataclass
class ResumeResult:
    k: int
    m: int
    uninterrupted: list[float]  # losses of steps k+1..k+m without a restart
    resumed: list[float]  # the same steps in a fresh process after load_checkpoint
    checkpoint: str  # "the spec's save_checkpoint/load_checkpoint" or the default's description
    rtol: float
    seconds: float


def parse_km(text: str) -> tuple[int, int]:
    """``--resume-check K,M``."""
    try:
        k, m = (int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--resume-check {text!r}: expected K,M (two positive integers)") from None
    if k < 1 or m < 1:
        raise InputError(f"--resume-check {text!r}: K and M must be >= 1")
    return k, m


def default_save(spec: TrainSpec, path: Path) -> None:
    torch.save({"model": spec.model.state_dict(), "optimizer": spec.optimizer.state_dict()}, path)


def default_load(spec: TrainSpec, path: Path) -> None:
    state = torch.load(path, map_location=model_device(spec), weights_only=True)
    spec.model.load_state_dict(state["model"])
    spec.optimizer.load_state_dict(state["optimizer"])


def _train(run: _Run, steps: int) -> list[float]:
    """``steps`` more steps of ``run`` (one batch source throughout); their losses."""
    run.spec.model.train()
    start = len(run.losses)
    for step in range(start + 1, start + steps + 1):
        if not run.step(step):
            e = run.error or {"type": "non-finite", "message": run.stop}
            raise RuntimeError(f"training step {step} failed: {e['type']}: {e['message']}")
    return run.losses[start:]


def _new_run(spec: TrainSpec) -> _Run:
    return _Run(spec, batch_source(spec), model_device(spec), warmup=0)


def _save(spec: TrainSpec, path: Path) -> None:
    (spec.save_checkpoint or (lambda p: default_save(spec, p)))(path)


def _load(spec: TrainSpec, path: Path) -> None:
    (spec.load_checkpoint or (lambda p: default_load(spec, p)))(path)


def check_resume(
    entry: str, device: torch.device, k: int, m: int
) -> tuple[Check, ResumeResult | None]:
    """Run both halves; never raises for a failure of the user's code (it becomes the check)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labcoat-resume-") as tmp:
        path = Path(tmp) / "resume.pt"
        try:
            spec = load_entry(entry, device)
            run = _new_run(spec)
            _train(run, k)
            _save(spec, path)
            uninterrupted = _train(run, m)
        except Exception as exc:
            return Check(
                "resume equivalence", "fail", f"uninterrupted run: {type(exc).__name__}: {exc}"
            ), None
        if not path.exists():
            return Check(
                "resume equivalence", "fail", f"save_checkpoint({path}) wrote no file there"
            ), None
        out = Path(tmp) / "resumed.json"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])
            ),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "toolkit.profiling.validator.resume", "--entry", entry,
             "--device", str(device), "--load", str(path), "--steps", str(m), "--out", str(out)],
            capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env,
        )  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return Check(
                "resume equivalence",
                "fail",
                f"the resumed process failed (exit {proc.returncode}): {' | '.join(tail)}",
            ), None
        resumed = json.loads(out.read_text())["losses"]
    result = ResumeResult(
        k=k,
        m=m,
        uninterrupted=uninterrupted,
        resumed=resumed,
        checkpoint="the spec's save_checkpoint/load_checkpoint"
        if spec.save_checkpoint and spec.load_checkpoint
        else "default: model and optimizer state_dicts only (the spec gives no save_checkpoint/load_checkpoint)",
        rtol=CUDA_RTOL if device.type == "cuda" else 0.0,
        seconds=time.perf_counter() - t0,
    )
    return judge(result), result


def judge(r: ResumeResult) -> Check:
    pairs = list(zip(r.uninterrupted, r.resumed, strict=True))
    bad = next(
        (
            i
            for i, (a, b) in enumerate(pairs)
            if not math.isclose(a, b, rel_tol=r.rtol, abs_tol=0.0)
        ),
        None,
    )
    what = f"{r.k} steps, checkpoint ({r.checkpoint}), then {r.m} steps in a fresh process"
    tol = "exactly" if r.rtol == 0 else f"within rtol {r.rtol:g}"
    if bad is None:
        return Check(
            "resume equivalence",
            "pass",
            f"{what}: all {r.m} losses match the uninterrupted run {tol}",
        )
    a, b = pairs[bad]
    return Check(
        "resume equivalence",
        "fail",
        f"{what}: step {r.k + bad + 1} loss {b:.6g} after resume vs {a:.6g} uninterrupted (not {tol}); "
        "the checkpoint misses state that training depends on (LR scheduler, RNG, sampler or "
        "data-loader position, optimizer state)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The fresh process: build the spec, load the checkpoint, train, write the losses as JSON."""
    p = argparse.ArgumentParser(prog="python -m toolkit.profiling.validator.resume")
    p.add_argument("--entry", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--load", type=Path, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    spec = load_entry(args.entry, parse_device(args.device))
    _load(spec, args.load)
    args.out.write_text(json.dumps({"losses": _train(_new_run(spec), args.steps)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
