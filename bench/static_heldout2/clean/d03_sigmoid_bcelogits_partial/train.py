# Follows: cvg/glue-factory#89
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from model import MultiLabelNet


@dataclass
class Config:
    num_labels: int = 20
    lr: float = 3e-4
    epochs: int = 10
    pos_weight: float = 2.0
    device: str = "cuda"


def make_loss(cfg):
    pos_weight = torch.full((cfg.num_labels,), cfg.pos_weight, device=cfg.device)
    return partial(F.binary_cross_entropy_with_logits, pos_weight=pos_weight)


def train(cfg, loader):
    model = MultiLabelNet(cfg.num_labels).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    loss_fn = make_loss(cfg)
    for epoch in range(cfg.epochs):
        model.train()
        seen, total = 0, 0.0
        for images, targets in loader:
            images, targets = images.to(cfg.device), targets.float().to(cfg.device)
            opt.zero_grad()
            loss = loss_fn(model(images), targets)
            loss.backward()
            opt.step()
            total += loss.item() * images.size(0)
            seen += images.size(0)
        print(f"epoch {epoch} loss {total / seen:.4f}")
    return model


@torch.no_grad()
def predict(model, images, threshold=0.5):
    model.eval()
    probs = torch.sigmoid(model(images))
    return (probs > threshold).long()
