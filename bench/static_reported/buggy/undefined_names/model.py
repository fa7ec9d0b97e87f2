# After the everyday NameError an hour into a job: a module that forgot `import torch.nn as nn`.
import torch


class ConvNet(nn.Module):  # expect: LC001
    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3), torch.nn.ReLU())
        self.head = torch.nn.Linear(32 * 30 * 30, n_classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))
