# Follows: udacity/deep-learning-v2-pytorch#3 (validation/test run without model.eval() although the model has dropout)
import argparse

import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, in_dim=784, hidden=512, n_classes=10, p=0.2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(p),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(p),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x):
        return self.net(x)


def fit(model, train_loader, valid_loader, epochs, lr, ckpt="model.pt"):
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    best_valid = float("inf")
    for epoch in range(1, epochs + 1):
        train_loss, valid_loss = 0.0, 0.0
        model.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * data.size(0)
        model.eval()
        with torch.no_grad():
            for data, target in valid_loader:
                valid_loss += criterion(model(data), target).item() * data.size(0)
        train_loss /= len(train_loader.sampler)
        valid_loss /= len(valid_loader.sampler)
        print(f"Epoch {epoch}\tTrain {train_loss:.6f}\tValid {valid_loss:.6f}")
        if valid_loss < best_valid:
            torch.save(model.state_dict(), ckpt)
            best_valid = valid_loss
    return best_valid


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.01)
    args = ap.parse_args()
    from data import get_loaders  # project-local helper returning (train, valid) MNIST loaders

    fit(MLP(), *get_loaders(batch_size=20), epochs=args.epochs, lr=args.lr)
