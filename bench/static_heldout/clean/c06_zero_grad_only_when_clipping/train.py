# Pattern, no specific report (zero_grad reached only on one branch of an optimizer-step helper)
import argparse

import torch
import torch.nn as nn

from utils import AverageMeter, optimizer_step


class Regressor(nn.Module):
    def __init__(self, in_dim, hidden=256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def train(model, loader, optimizer, args):
    loss_fn = nn.SmoothL1Loss()
    for epoch in range(args.epochs):
        model.train()
        meter = AverageMeter()
        for x, y in loader:
            pred = model(x)
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer_step(model, optimizer, args.max_grad_norm)
            meter.update(loss.item(), x.size(0))
        print(f"epoch {epoch}: loss {meter.avg:.4f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-grad-norm", type=float, default=None)
    ap.add_argument("--in-dim", type=int, default=32)
    args = ap.parse_args()
    model = Regressor(args.in_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    data = torch.utils.data.TensorDataset(torch.randn(4096, args.in_dim), torch.randn(4096))
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)
    train(model, loader, optimizer, args)
