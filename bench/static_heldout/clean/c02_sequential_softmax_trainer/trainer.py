import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from models import build_mlp


class Trainer:
    def __init__(self, model, optimizer, device="cpu", log_every=100):
        self.model = model.to(device)
        self.optimizer = optimizer
        self.device = device
        self.log_every = log_every
        self.global_step = 0

    def compute_loss(self, batch):
        x, y = (t.to(self.device) for t in batch)
        scores = self.model(x)
        return F.cross_entropy(scores, y)

    def train_epoch(self, loader):
        self.model.train()
        for batch in loader:
            self.optimizer.zero_grad()
            loss = self.compute_loss(batch)
            loss.backward()
            self.optimizer.step()
            self.global_step += 1
            if self.global_step % self.log_every == 0:
                print(f"step {self.global_step} loss {loss.item():.4f}")

    @torch.no_grad()
    def validate(self, loader):
        self.model.eval()
        losses = [self.compute_loss(b).item() for b in loader]
        return sum(losses) / max(len(losses), 1)


def main(train_set, val_set, input_dim, num_classes):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=3e-4)
    args = ap.parse_args()
    model = build_mlp(input_dim, [256, 128], num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    trainer = Trainer(model, opt, device="cuda" if torch.cuda.is_available() else "cpu")
    train_loader = DataLoader(train_set, batch_size=128, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=256)
    for epoch in range(args.epochs):
        trainer.train_epoch(train_loader)
        print(f"epoch {epoch} val_loss {trainer.validate(val_loader):.4f}")
