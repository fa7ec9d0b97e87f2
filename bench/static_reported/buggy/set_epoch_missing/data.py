# After lucidrains/DALLE-pytorch#230 and pytorch/pytorch#31771: a DistributedSampler whose
# set_epoch() is never called gives every epoch the same order.
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


def build_loader(dataset, batch_size: int, world_size: int, rank: int):
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=4, pin_memory=True)
    return loader, sampler
