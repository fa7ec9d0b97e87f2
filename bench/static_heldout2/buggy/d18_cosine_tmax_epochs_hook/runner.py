# Pattern, no specific report
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hooks import LoggerHook, LrSchedulerHook


@dataclass
class RunnerCfg:
    epochs: int = 100
    lr: float = 5e-4
    weight_decay: float = 0.05


class Runner:
    def __init__(self, model, loader, cfg, device="cuda"):
        self.model = model.to(device)
        self.loader = loader
        self.device = device
        self.cfg = cfg
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs, eta_min=1e-6)
        self.hooks = [LrSchedulerHook(sched), LoggerHook()]
        self.epoch = self.iter = 0
        self.last_loss = float("nan")

    def call_hook(self, name):
        for h in self.hooks:
            getattr(h, name)(self)

    def run(self):
        for self.epoch in range(self.cfg.epochs):
            self.call_hook("before_epoch")
            self.model.train()
            for images, labels in self.loader:
                images, labels = images.to(self.device), labels.to(self.device)
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(images), labels, label_smoothing=0.1)
                loss.backward()
                self.optimizer.step()
                self.last_loss = loss.item()
                self.iter += 1
                self.call_hook("after_iter")
            self.call_hook("after_epoch")
