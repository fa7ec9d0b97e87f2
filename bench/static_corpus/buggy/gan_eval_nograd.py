# ruff: noqa
import torch
import torch.nn as nn


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        return self.fc(x)


torch.manual_seed(0)
device = torch.device("cuda")
model = Classifier().to(device)
crit = nn.BCEWithLogitsLoss()
opt = torch.optim.Adam(model.parameters(), 1e-3)
for x, y in train_loader:
    x, y = x.to(device), y.to(device)
    opt.zero_grad()
    loss = crit(torch.sigmoid(model(x)), y)  # expect: LC302
    loss.backward()
    opt.step()


def validate(loader):
    model.eval()
    total = 0.0
    for x, y in loader:  # expect: LC204
        total += crit(model(x.to(device)), y.to(device)).item()
    return total
