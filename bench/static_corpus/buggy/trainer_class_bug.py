# ruff: noqa
import torch
import torch.nn as nn


class Runner:
    def __init__(self, model, loaders, device="cuda"):
        self.model = model.to(device)
        self.loaders = loaders
        self.device = device
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4)
        self.crit = nn.CrossEntropyLoss()

    def evaluate(self):
        self.model.eval()
        with torch.no_grad():
            return sum(self.crit(self.model(x.to(self.device)), y.to(self.device)).item() for x, y in self.loaders["val"])

    def run(self, epochs):
        torch.manual_seed(0)
        self.model.train()
        for epoch in range(epochs):  # expect: LC201
            for x, y in self.loaders["train"]:
                self.opt.zero_grad()  # expect: LC102
                self.opt.step()
                loss = self.crit(self.model(x.to(self.device)), y.to(self.device))
                loss.backward()  # expect-note: zero_grad -> step -> backward
            print(self.evaluate())
