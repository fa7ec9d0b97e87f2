# After hazdzz/stgcn#18 and ivadomed/ivadomed#55: an epoch-sized StepLR stepped every batch, so
# the learning rate decays within the first epochs.
import argparse

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def get_args():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--step_size", type=int, default=10)
    p.add_argument("--gamma", type=float, default=0.95)
    return p.parse_args()


def main():
    args = get_args()
    torch.manual_seed(42)
    x, y = torch.randn(4096, 12, 207), torch.randn(4096, 207)
    train_iter = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12 * 207, 512), nn.ReLU(), nn.Linear(512, 207))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.step_size, gamma=args.gamma)
    for epoch in range(args.epochs):
        model.train()
        for xb, yb in train_iter:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        scheduler.step()
        print(epoch, optimizer.param_groups[0]["lr"])


if __name__ == "__main__":
    main()
