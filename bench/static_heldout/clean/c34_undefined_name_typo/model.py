# Pattern, no specific report (misspelled variable name in the validation loop: NameError at the end of epoch 1)
import torch.nn as nn


def build_model(arch="small", num_classes=10):
    width = {"small": 32, "base": 64}[arch]
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes),
    )
