# Follows: openvinotoolkit/nncf#379
import argparse

import torch
import torch.nn as nn

from data import make_loaders


def mlp(in_dim, hidden=(256, 128), n_classes=2):
    layers, d = [], in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU()]  # bug: BatchNorm1d in train mode raises on a batch of size 1
        d = h
    return nn.Sequential(*layers, nn.Linear(d, n_classes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    train_loader, val_loader = make_loaders(batch_size=args.batch_size)
    model = mlp(32)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = sum((model(x).argmax(1) == y).sum().item() for x, y in val_loader) / len(val_loader.dataset)
        print(f"epoch {epoch} val_acc {acc:.4f}")


if __name__ == "__main__":
    main()
