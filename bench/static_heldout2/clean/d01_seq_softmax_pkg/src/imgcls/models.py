# Follows: vinhkhuc/PyTorch-Mini-Tutorials#1
import torch.nn as nn


def conv_block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def build_classifier(num_classes=10, width=32):
    return nn.Sequential(
        conv_block(3, width),
        conv_block(width, width * 2),
        conv_block(width * 2, width * 4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(width * 4, num_classes),
    )
