# Follows: pytorch/vision#1261 ("Scheduler called at each step, instead of epoch" in references/detection/engine.py train_one_epoch)
import math
import sys

import torch


def train_one_epoch(model, optimizer, data_loader, device, epoch, print_freq=20):
    model.train()
    for i, (images, targets) in enumerate(data_loader):
        images = [img.to(device) for img in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        loss_dict = model(images, targets)
        losses = sum(loss for loss in loss_dict.values())
        if not math.isfinite(losses.item()):
            print(f"Loss is {losses.item()}, stopping training")
            sys.exit(1)
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
        if i % print_freq == 0:
            print(f"Epoch [{epoch}] [{i}/{len(data_loader)}] loss {losses.item():.4f} lr {optimizer.param_groups[0]['lr']:.5f}")


@torch.no_grad()
def evaluate_loss(model, data_loader, device):
    model.train()  # torchvision detection models only return losses in train mode
    total = 0.0
    for images, targets in data_loader:
        images = [img.to(device) for img in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        total += sum(model(images, targets).values()).item()
    return total / len(data_loader)
