"""`hardware launch` sbatch scripts submitted for real: two nodes (two slurmd on this host), the
torchrun rendezvous at the first node's address, one gloo all-reduce across both. (The
single-node script with a time limit runs in tests/slurm/test_watchdog.py.)"""

from __future__ import annotations

import re
import subprocess

from tests.slurm.conftest import PY, scontrol_job, wait_for
from tests.slurm.long_jobs import LongJobs


def test_two_node_script_rendezvous_and_all_reduce(long_jobs: LongJobs) -> None:
    job = long_jobs.two_node_job
    ended = wait_for(
        lambda: (
            (j := scontrol_job(job))["JobState"] not in ("PENDING", "RUNNING", "COMPLETING") and j
        ),
        timeout=240,
        step=0.5,
    )
    log = (long_jobs.work / f"two-node-{job}.out").read_text()
    assert (ended["JobState"], ended["ExitCode"], ended["NumNodes"]) == ("COMPLETED", "0:0", "2"), (
        log
    )
    script = (long_jobs.work / "two-node.sbatch").read_text()
    assert f"srun --kill-on-bad-exit=1 {PY} -m torch.distributed.run --nnodes 2" in script
    assert "2 node(s), rendezvous 127.0.0.1:" in log  # the first node's NodeAddr
    ranks = re.findall(r"^rank (\d) of 2 on (\S+): sum 3$", log, re.M)
    assert sorted(rank for rank, _ in ranks) == ["0", "1"], log
    nodes = subprocess.run(
        ["scontrol", "show", "hostnames", ended["NodeList"]], capture_output=True, text=True
    ).stdout.split()
    assert len(nodes) == 2 and {node for _, node in ranks} == set(nodes)  # one rank per node
