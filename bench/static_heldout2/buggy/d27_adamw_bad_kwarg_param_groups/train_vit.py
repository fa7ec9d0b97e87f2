# Pattern, no specific report
import argparse

import torch
import torch.nn.functional as F
from torchvision.models import vit_b_16

from optim_factory import create_optimizer


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--opt", default="adamw", choices=["adamw", "sgd"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--warmup-epochs", type=int, default=5)
    return p.parse_args()


def main(train_loader):
    cfg = parse()
    model = vit_b_16(num_classes=1000).cuda()
    optimizer = create_optimizer(model, cfg)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=cfg.warmup_epochs)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs - cfg.warmup_epochs)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[cfg.warmup_epochs])
    for epoch in range(cfg.epochs):
        model.train()
        for images, targets in train_loader:
            images, targets = images.cuda(non_blocking=True), targets.cuda(non_blocking=True)
            loss = F.cross_entropy(model(images), targets, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        scheduler.step()
        print(f"epoch {epoch} loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.2e}")
