# Follows: vinhkhuc/PyTorch-Mini-Tutorials#1 (nn.Sequential ends with a Softmax module, loss is CrossEntropyLoss)
import torch.nn as nn


def build_mlp(input_dim, hidden_dims, num_classes, dropout=0.1):
    layers = []
    prev = input_dim
    for h in hidden_dims:
        layers += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(dropout)]
        prev = h
    layers.append(nn.Linear(prev, num_classes))
    layers.append(nn.Softmax(dim=1))  # bug: final Softmax, the trainer applies F.cross_entropy on these outputs
    return nn.Sequential(*layers)
