"""``--script`` under ``torchrun``: is the multi-process setup right?

Each rank runs the runner on the same script. Per rank the observer records, on steps
``FINGERPRINT_STEPS``: the per-parameter gradient norms at the optimizer step (after DDP's
all-reduce) and a hash of the model's first input; and every ``torch.save`` path. After the run
each rank writes what it saw to a folder shared by the ranks of this node, loads every checkpoint
any rank wrote, and writes the outcome; rank 0 reads all ranks' files and judges:

- gradients identical across ranks after a step (a rank-divergent gradient: a forward that
  bypasses the DDP wrapper, a parameter DDP does not reduce);
- each rank trained on its own shard (identical inputs on every rank: no DistributedSampler);
- a checkpoint path written by one rank only, and loadable on every rank.

Stopping is agreed: at each step end the ranks all-reduce "stop" (MAX), so no rank is left
waiting in a collective of a step the others never run. Works with gloo (CPU) and NCCL (GPU).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from toolkit.profiling.validator.checks import Check

FINGERPRINT_STEPS = (2, 3, 4)  # step 1's inputs precede the forward hook
GRAD_RTOL = 1e-5  # DDP's all-reduce gives every rank the same tensor; allow float noise only
WAIT_S = 120.0  # how long a rank waits for the others' files


@dataclass
class Rank:
    rank: int
    world_size: int
    run_id: str

    @property
    def folder(self) -> Path:
        return Path(tempfile.gettempdir()) / f"labcoat-ddp-{self.run_id}"


def from_env() -> Rank | None:
    """The torchrun environment (RANK, WORLD_SIZE), or None for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world < 2 or "RANK" not in os.environ:
        return None
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none") + "-" + os.environ.get("MASTER_PORT", "")
    return Rank(int(os.environ["RANK"]), world, run_id)


def input_hash(t: torch.Tensor) -> str:
    return hashlib.sha1(
        t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
    ).hexdigest()


@dataclass
class Recorder:
    """What one rank saw; written to ``rank{N}.json``."""

    rank: int
    grads: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> name -> norm
    inputs: dict[int, str] = field(default_factory=dict)  # step -> hash of the first input
    saves: list[str] = field(default_factory=list)  # absolute paths torch.save wrote
    loads: dict[str, str] = field(default_factory=dict)  # path -> "ok" or the error

    def save_hook(self, original: Any) -> Any:
        def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(obj, f, *args, **kwargs)
            if isinstance(f, str | os.PathLike):
                self.saves.append(str(Path(f).resolve()))
            return out

        return save


def agree_to_stop(want: bool, device: torch.device | None) -> bool:
    """MAX all-reduce of ``want`` over the default group; ``want`` when none is initialized."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return want
    backend = dist.get_backend()
    dev = device if backend == "nccl" and device is not None else torch.device("cpu")
    flag = torch.tensor([1 if want else 0], device=dev)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _wait(paths: list[Path], deadline: float) -> list[Path]:
    """Wait until every path exists or the deadline passes; return the missing ones."""
    while True:
        missing = [p for p in paths if not p.exists()]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.05)


def finish(r: Rank, rec: Recorder) -> list[Check] | None:
    """Exchange records through the shared folder; rank 0 returns the checks, others None."""
    r.folder.mkdir(parents=True, exist_ok=True)
    _write(
        r.folder / f"seen{r.rank}.json",
        {"grads": rec.grads, "inputs": rec.inputs, "saves": rec.saves},
    )
    deadline = time.monotonic() + WAIT_S
    seen_paths = [r.folder / f"seen{i}.json" for i in range(r.world_size)]
    missing = _wait(seen_paths, deadline)
    seen = {int(p.stem[4:]): json.loads(p.read_text()) for p in seen_paths if p not in missing}
    for path in sorted({s for d in seen.values() for s in d["saves"]}):
        try:
            torch.load(path, map_location="cpu", weights_only=True)
            rec.loads[path] = "ok"
        except Exception as exc:
            rec.loads[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    _write(r.folder / f"loaded{r.rank}.json", rec.loads)
    if r.rank != 0:
        return None
    loaded_paths = [r.folder / f"loaded{i}.json" for i in range(r.world_size)]
    missing_loads = _wait(loaded_paths, deadline)
    loaded = {
        int(p.stem[6:]): json.loads(p.read_text()) for p in loaded_paths if p not in missing_loads
    }
    shutil.rmtree(r.folder, ignore_errors=True)
    return judge(r.world_size, seen, loaded)


def _grad_check(seen: dict[int, dict]) -> Check:
    ref = seen.get(0, {}).get("grads", {})
    steps = sorted(ref)
    if not steps:
        return Check(
            "DDP gradients", "skip", f"fewer than {FINGERPRINT_STEPS[0]} steps: not compared"
        )
    worst = (0.0, None, None, None)  # relative diff, rank, step, parameter
    for rank, d in seen.items():
        for step in steps:
            other = d["grads"].get(step, {})
            for name, a in ref[step].items():
                b = other.get(name)
                if b is None:
                    continue
                diff = abs(a - b) / max(abs(a), abs(b), 1e-30)
                if diff > worst[0] or (math.isnan(diff)):
                    worst = (diff, rank, step, name)
    diff, rank, step, name = worst
    ranks = len(seen)
    if diff <= GRAD_RTOL:
        return Check(
            "DDP gradients",
            "pass",
            f"identical on all {ranks} ranks at steps {', '.join(steps)} (max relative diff {diff:.2g})",
        )
    return Check(
        "DDP gradients",
        "fail",
        f"rank {rank} differs from rank 0 at step {step} in {name}: relative diff {diff:.3g} > "
        f"{GRAD_RTOL:g}; gradients are not all-reduced (a forward through model.module instead of "
        "the DDP wrapper, a parameter outside DDP, or no_sync left on)",
    )


def _shard_check(seen: dict[int, dict]) -> Check:
    steps = sorted(set.intersection(*(set(d["inputs"]) for d in seen.values()))) if seen else []
    if not steps:
        return Check("DDP data shards", "skip", "no model input observed on every rank")
    same = [s for s in steps if len({d["inputs"][s] for d in seen.values()}) == 1]
    if len(same) == len(steps):
        return Check(
            "DDP data shards",
            "fail",
            f"all {len(seen)} ranks trained on identical inputs at steps {', '.join(steps)}: every "
            "rank sees the same data (no DistributedSampler, or the same seed for each rank's "
            "sampling), so the effective batch is one rank's",
        )
    return Check(
        "DDP data shards",
        "pass",
        f"ranks trained on different inputs at {len(steps) - len(same)} of {len(steps)} compared steps",
    )


def _checkpoint_check(seen: dict[int, dict], loaded: dict[int, dict]) -> Check:
    writers: dict[str, list[int]] = {}
    for rank, d in sorted(seen.items()):
        for path in d["saves"]:
            writers.setdefault(path, []).append(rank)
    if not writers:
        return Check("DDP checkpoint", "skip", "no torch.save to a path observed during the run")
    several = {p: rs for p, rs in writers.items() if len(set(rs)) > 1}
    if several:
        p, rs = next(iter(several.items()))
        return Check(
            "DDP checkpoint",
            "fail",
            f"{p} written by ranks {sorted(set(rs))}: ranks race on one file (save on rank 0 only)",
        )
    bad = [(rank, p, e) for rank, d in loaded.items() for p, e in d.items() if e != "ok"]
    if bad:
        rank, p, e = bad[0]
        return Check("DDP checkpoint", "fail", f"rank {rank} cannot load {p}: {e}")
    return Check(
        "DDP checkpoint",
        "pass",
        f"{len(writers)} checkpoint file(s), each written by one rank and loaded on all {len(loaded)}",
    )


def judge(world_size: int, seen: dict[int, dict], loaded: dict[int, dict]) -> list[Check]:
    checks = []
    absent = sorted(set(range(world_size)) - set(seen))
    if absent:
        checks.append(
            Check(
                "DDP ranks",
                "fail",
                f"rank(s) {absent} reported nothing within {WAIT_S:g} s (crashed or hung)",
            )
        )
    else:
        checks.append(Check("DDP ranks", "pass", f"all {world_size} ranks reported"))
    checks += [_grad_check(seen), _shard_check(seen), _checkpoint_check(seen, loaded)]
    return checks
