# Follows: milesial/Pytorch-UNet#468 ("Gradients are clipped before the unscaling")
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


def dice_loss(logits, target, eps=1e-6):
    probs = torch.sigmoid(logits)
    inter = (probs * target).sum(dim=(1, 2, 3))
    union = probs.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return 1 - ((2 * inter + eps) / (union + eps)).mean()


def train_one_epoch(model, loader, optimizer, grad_scaler, device, amp=True, gradient_clipping=1.0):
    model.train()
    epoch_loss = 0.0
    for images, masks in loader:
        images = images.to(device, dtype=torch.float32, memory_format=torch.channels_last)
        masks = masks.to(device, dtype=torch.float32)
        with torch.autocast(device.type, enabled=amp):
            logits = model(images)
            loss = F.binary_cross_entropy_with_logits(logits, masks) + dice_loss(logits, masks)
        optimizer.zero_grad(set_to_none=True)
        grad_scaler.scale(loss).backward()
        grad_scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), gradient_clipping)
        grad_scaler.step(optimizer)
        grad_scaler.update()
        epoch_loss += loss.item()
    return epoch_loss / len(loader)


def main(model: nn.Module, train_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--amp", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda")
    model = model.to(device=device, memory_format=torch.channels_last)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=args.lr, weight_decay=1e-8, momentum=0.999, foreach=True)
    grad_scaler = torch.cuda.amp.GradScaler(enabled=args.amp)
    for epoch in range(1, args.epochs + 1):
        loss = train_one_epoch(model, train_loader, optimizer, grad_scaler, device, amp=args.amp)
        print(f"epoch {epoch}: {loss:.4f}")
