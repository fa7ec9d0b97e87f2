# Follows: asyml/texar-pytorch#310
import argparse

import torch
import torch.nn as nn
from torchvision.models import resnet18

from engine import evaluate, train_one_epoch


def get_args():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--num-classes", type=int, default=100)
    return p.parse_args()


def main(train_loader, val_loader):
    args = get_args()
    device = torch.device("cuda")
    model = resnet18(num_classes=args.num_classes).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    best = 0.0
    model.train()  # bug: train mode set once; evaluate() leaves the model in eval mode from epoch 1 on
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)
        acc = evaluate(model, val_loader, device)
        scheduler.step()
        if acc > best:
            best = acc
            torch.save(model.state_dict(), "best.pth")
        print(f"epoch {epoch} loss {loss:.4f} acc {acc:.4f} best {best:.4f}")
