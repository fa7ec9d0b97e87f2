"""One all-reduce over gloo, launched by torch.distributed.run on each node of a Slurm job:
prints ``rank R of W on NODE: sum S`` (S = 1 + 2 + ... + W when every rank took part)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    value = torch.tensor([float(rank + 1)])
    dist.all_reduce(value)
    node = os.environ.get("SLURMD_NODENAME", "?")
    print(f"rank {rank} of {world} on {node}: sum {value.item():g}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
