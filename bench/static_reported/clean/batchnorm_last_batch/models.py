# After pytorch/pytorch#7716 and NRCan/geo-deep-learning#113: BatchNorm1d in training mode
# raises on a last batch of one sample (dataset size % batch size == 1).
from torch import nn


class TabMLP(nn.Module):
    def __init__(self, n_features: int, hidden: int = 256):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.body(x).squeeze(-1)
