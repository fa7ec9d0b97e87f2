# Follows: vinhkhuc/PyTorch-Mini-Tutorials#1
# usage: python -m imgcls.train --epochs 30
import argparse

import torch
import torch.nn as nn

from .models import build_classifier


def train_one_epoch(model, loader, criterion, optimizer, device):
    model.train()
    running = 0.0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images), targets)
        loss.backward()
        optimizer.step()
        running += loss.item() * images.size(0)
    return running / len(loader.dataset)


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    for images, targets in loader:
        preds = model(images.to(device)).argmax(dim=1).cpu()
        correct += (preds == targets).sum().item()
        total += targets.numel()
    return correct / max(total, 1)


def main(train_loader, val_loader):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--num-classes", type=int, default=10)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_classifier(args.num_classes).to(device)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    for epoch in range(args.epochs):
        loss = train_one_epoch(model, train_loader, criterion, optimizer, device)
        acc = evaluate(model, val_loader, device)
        print(f"epoch {epoch:03d} loss {loss:.4f} val_acc {acc:.4f}")
