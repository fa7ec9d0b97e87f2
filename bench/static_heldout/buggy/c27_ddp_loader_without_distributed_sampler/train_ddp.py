import argparse
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torchvision
from torch.nn.parallel import DistributedDataParallel as DDP

from data import build_train_loader


def setup():
    dist.init_process_group("nccl")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    return local_rank


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=90)
    ap.add_argument("--batch-size", type=int, default=64, help="per-GPU batch size")
    args = ap.parse_args()
    local_rank = setup()
    model = torchvision.models.resnet50().cuda(local_rank)
    model = DDP(model, device_ids=[local_rank])
    loader = build_train_loader(args.data, args.batch_size)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * dist.get_world_size(), momentum=0.9, weight_decay=1e-4)
    for epoch in range(args.epochs):
        model.train()
        for images, target in loader:
            images, target = images.cuda(local_rank, non_blocking=True), target.cuda(local_rank, non_blocking=True)
            loss = criterion(model(images), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if dist.get_rank() == 0:
            print(f"epoch {epoch} loss {loss.item():.4f}")
            torch.save(model.module.state_dict(), "checkpoint.pth")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
