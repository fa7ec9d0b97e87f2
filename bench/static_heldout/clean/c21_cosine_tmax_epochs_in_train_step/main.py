# Follows: nodefluxio/vortex#58 (default trainer always calls scheduler.step() per batch update, even for per-epoch schedulers)
import argparse

import timm
import torch

from trainer import ClassificationTrainer


def build(args):
    model = timm.create_model("vit_small_patch16_224", pretrained=True, num_classes=args.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=1e-6)
    return model, optimizer, scheduler


def main(train_loader, val_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--num-classes", type=int, default=200)
    args = ap.parse_args()
    model, optimizer, scheduler = build(args)
    trainer = ClassificationTrainer(model.cuda(), optimizer, scheduler, "cuda")
    trainer.fit(train_loader, val_loader, args.epochs)
