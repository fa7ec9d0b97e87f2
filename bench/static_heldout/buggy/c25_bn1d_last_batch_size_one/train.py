import argparse

import numpy as np
import torch
import torch.nn as nn

from data import N_FEATURES, make_loaders


class TabularMLP(nn.Module):
    def __init__(self, d_in, hidden=(256, 128), dropout=0.1):
        super().__init__()
        layers, prev = [], d_in
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
            prev = h
        layers.append(nn.Linear(prev, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).squeeze(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default="housing.csv")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    arr = np.loadtxt(args.csv, delimiter=",", skiprows=1, dtype=np.float32)
    train_loader, val_loader = make_loaders(arr[:, :N_FEATURES], arr[:, N_FEATURES])
    model = TabularMLP(N_FEATURES)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        model.train()
        for xb, yb in train_loader:
            loss = nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = sum(nn.functional.mse_loss(model(xb), yb, reduction="sum").item() for xb, yb in val_loader)
        print(f"epoch {epoch}: val mse {val / len(val_loader.dataset):.4f}")


if __name__ == "__main__":
    main()
