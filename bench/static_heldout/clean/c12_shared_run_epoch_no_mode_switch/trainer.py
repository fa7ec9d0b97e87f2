import argparse

import torch
import torch.nn.functional as F

from model import TinyUNet3D


class UNetTrainer:
    def __init__(self, model, optimizer, loaders, device):
        self.model = model.to(device)
        self.optimizer = optimizer
        self.loaders = loaders
        self.device = device

    def _run_epoch(self, loader, training):
        total, n = 0.0, 0
        self.model.train(training)
        with torch.set_grad_enabled(training):
            for vol, seg in loader:
                vol, seg = vol.to(self.device), seg.to(self.device)
                loss = F.cross_entropy(self.model(vol), seg)
                if training:
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
                total += loss.item()
                n += 1
        return total / max(n, 1)

    def fit(self, epochs):
        best = float("inf")
        for epoch in range(epochs):
            train_loss = self._run_epoch(self.loaders["train"], training=True)
            val_loss = self._run_epoch(self.loaders["val"], training=False)
            print(f"{epoch}: train {train_loss:.4f} val {val_loss:.4f}")
            if val_loss < best:
                best = val_loss
                torch.save(self.model.state_dict(), "best_unet3d.pt")


def main(loaders):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2e-4)
    args = ap.parse_args()
    model = TinyUNet3D()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-5)
    UNetTrainer(model, opt, loaders, "cuda").fit(args.epochs)
