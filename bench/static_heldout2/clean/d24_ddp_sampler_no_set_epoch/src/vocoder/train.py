# Follows: kan-bayashi/ParallelWaveGAN#177
# launch: torchrun --nproc_per_node=4 -m vocoder.train
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from .data import build_loader


def run(generator, items, epochs=200, batch_size=16, lr=2e-4):
    dist.init_process_group(backend="nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    model = DDP(generator.cuda(), device_ids=[local_rank])
    loader, sampler = build_loader(items, batch_size, world, rank)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.99))
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        for mel, wav in loader:
            mel, wav = mel.cuda(non_blocking=True), wav.cuda(non_blocking=True)
            opt.zero_grad()
            loss = F.l1_loss(model(mel).squeeze(1), wav)
            loss.backward()
            opt.step()
        if rank == 0:
            print(f"epoch {epoch} l1 {loss.item():.4f}")
            torch.save(model.module.state_dict(), f"gen_{epoch:04d}.pt")
    dist.destroy_process_group()
