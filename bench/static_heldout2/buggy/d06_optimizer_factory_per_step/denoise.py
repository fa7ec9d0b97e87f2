# Follows: zju3dv/Vox-Fusion#31 (Adam re-initialised every optimisation loop discards its moment estimates)
import argparse

import torch
import torch.nn as nn


class DnCNN(nn.Module):
    def __init__(self, channels=1, depth=8, width=64):
        super().__init__()
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, noisy):
        return noisy - self.net(noisy)


def build(cfg):
    model = DnCNN(depth=cfg.depth).to(cfg.device)
    make_opt = lambda params: torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    return model, make_opt, nn.L1Loss()


def train_step(model, make_opt, loss_fn, clean, sigma):
    optimizer = make_opt(model.parameters())  # bug: a fresh Adam (zero moments, step=0) is built on every step
    noisy = clean + sigma * torch.randn_like(clean)
    optimizer.zero_grad()
    loss = loss_fn(model(noisy), clean)
    loss.backward()
    optimizer.step()
    return loss.item()


def main(loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--depth", type=int, default=17)
    ap.add_argument("--sigma", type=float, default=25 / 255)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--device", default="cuda")
    cfg = ap.parse_args()
    model, make_opt, loss_fn = build(cfg)
    for epoch in range(cfg.epochs):
        model.train()
        losses = [train_step(model, make_opt, loss_fn, x.to(cfg.device), cfg.sigma) for x, _ in loader]
        print(f"epoch {epoch} l1 {sum(losses) / len(losses):.5f}")
