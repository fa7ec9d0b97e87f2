import argparse

import torch
import torch.nn.functional as F

from optim_factory import create_optimizer, create_scheduler


def main(model, loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=1.5e-4)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--warmup-epochs", type=int, default=5)
    args = ap.parse_args()
    model = model.cuda()
    optimizer = create_optimizer(model, args.lr, args.weight_decay, betas=(0.9, 0.95))
    scheduler = create_scheduler(optimizer, args.warmup_epochs * len(loader), args.epochs * len(loader))
    for epoch in range(args.epochs):
        model.train()
        for imgs, _ in loader:
            imgs = imgs.cuda(non_blocking=True)
            recon, mask = model(imgs)
            loss = (F.mse_loss(recon, imgs, reduction="none").mean(dim=1) * mask).sum() / mask.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        print(f"epoch {epoch}: loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.2e}")
