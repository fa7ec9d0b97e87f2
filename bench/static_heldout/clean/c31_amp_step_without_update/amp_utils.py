# Follows: Azure/MS-AMP PR #45 ("add scaler.update() in MNIST examples": scaler.step(optimizer) without scaler.update())
import torch


class AmpStepper:
    """Small wrapper so the training loop does not deal with GradScaler directly."""

    def __init__(self, optimizer, enabled=True):
        self.optimizer = optimizer
        self.scaler = torch.cuda.amp.GradScaler(enabled=enabled)

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def step(self):
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
