# ruff: noqa
import torch
import torch.nn as nn


class Classifier(nn.Module):
    def __init__(self, n_in, n_cls):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, 256), nn.ReLU())
        self.out = nn.Linear(256, n_cls)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.out(self.body(x)))


torch.manual_seed(0)
model = Classifier(128, 10)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
optimizer.zero_grad()
for epoch in range(10):
    for x, y in train_loader:
        loss = criterion(model(x), y)  # expect: LC301
        loss.backward()
        optimizer.step()  # expect: LC101
    model.eval  # expect: LC111
    correct = 0
    with torch.no_grad():
        for x, y in val_loader:
            outputs = model(x)
            correct += (outputs.argmax(0) == y).sum().item()  # expect: LC308
