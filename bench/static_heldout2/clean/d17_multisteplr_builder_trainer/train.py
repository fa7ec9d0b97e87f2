# Follows: pytorch/pytorch#3814 (apaszke: "Scheduler should step after the end of each epoch, not after every iteration")
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet34


def build(cfg):
    model = resnet34(num_classes=cfg.num_classes).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[60, 120, 160], gamma=0.2)
    return model, opt, sched


class Trainer:
    def __init__(self, model, opt, sched, train_loader, val_loader):
        self.model, self.opt, self.sched = model, opt, sched
        self.train_loader, self.val_loader = train_loader, val_loader

    def _train_step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss.item()

    @torch.no_grad()
    def _validate(self):
        self.model.eval()
        hits = sum((self.model(x.cuda()).argmax(1).cpu() == y).sum().item() for x, y in self.val_loader)
        return hits / len(self.val_loader.dataset)

    def fit(self, epochs):
        for epoch in range(epochs):
            self.model.train()
            losses = [self._train_step(x.cuda(), y.cuda()) for x, y in self.train_loader]
            self.sched.step()
            acc = self._validate()
            print(f"epoch {epoch} loss {sum(losses) / len(losses):.4f} acc {acc:.4f} lr {self.sched.get_last_lr()[0]:.4f}")


def main(train_loader, val_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-classes", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=200)
    cfg = ap.parse_args()
    model, opt, sched = build(cfg)
    Trainer(model, opt, sched, train_loader, val_loader).fit(cfg.epochs)
