# Follows: yastrebksv/TennisCourtDetector#7
import argparse

import torch
import torch.nn as nn

from utils import optimizer_step


class HeatmapNet(nn.Module):
    def __init__(self, n_kpts=14, width=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        )
        self.out = nn.Conv2d(width, n_kpts + 1, 1)

    def forward(self, x):
        return self.out(self.body(x))


def train(args, loader):
    device = torch.device(args.device)
    model = HeatmapNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.MSELoss()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        for images, heatmaps in loader:
            images, heatmaps = images.to(device), heatmaps.to(device)
            loss = criterion(torch.sigmoid(model(images)), heatmaps)
            loss.backward()
            optimizer_step(model, optimizer, step, max_norm=args.clip, log_every=args.log_every)
            step += 1
        torch.save(model.state_dict(), f"{args.out}/model_{epoch}.pt")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="exps")
    args = ap.parse_args()
    from data import build_loader  # project-local dataset of (image, heatmap) pairs

    train(args, build_loader(args))
