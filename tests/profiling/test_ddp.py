"""--script under torchrun: 2 CPU processes (gloo) validate a DDP setup and catch its usual bugs."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "fixtures" / "script_ddp.py"


def torchrun(tmp_path: Path, *script_args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "toolkit.profiling.l0_runner", "--script", str(SCRIPT), "--skip-l0", "--steps", "6",
         "--format", "json", "--", "--out", str(tmp_path), *script_args],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout)  # rank 0's report only


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"] if c["name"].startswith("DDP")}


def test_a_correct_ddp_setup_passes(tmp_path):
    r = torchrun(tmp_path)
    assert statuses(r) == {
        "DDP ranks": "pass",
        "DDP gradients": "pass",
        "DDP data shards": "pass",
        "DDP checkpoint": "pass",
    }, r["checks"]
    assert r["training"]["steps"] == 6


def test_planted_ddp_bugs_are_caught(tmp_path):
    r = torchrun(tmp_path, "--no-sampler", "--bypass-ddp", "--save-all-ranks")
    assert statuses(r) == {
        "DDP ranks": "pass",
        "DDP gradients": "fail",  # forward through model.module: no all-reduce
        "DDP data shards": "fail",  # no DistributedSampler: both ranks see the same batches
        "DDP checkpoint": "fail",  # both ranks write ckpt.pt
    }, r["checks"]
    assert r["verdict"] == "FAIL"
