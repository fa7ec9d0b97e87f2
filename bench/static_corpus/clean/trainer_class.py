# ruff: noqa
import torch
import torch.nn as nn


class Trainer:
    def __init__(self, model, train_loader, val_loader, lr=1e-3, device="cuda"):
        self.model = model.to(device)
        self.device = device
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=100)
        self.criterion = nn.CrossEntropyLoss()

    @torch.no_grad()
    def validate(self):
        self.model.eval()
        total, correct = 0, 0
        for x, y in self.val_loader:
            x, y = x.to(self.device), y.to(self.device)
            pred = self.model(x).argmax(dim=1)
            correct += (pred == y).sum().item()
            total += y.size(0)
        return correct / total

    def train_epoch(self):
        self.model.train()
        for x, y in self.train_loader:
            x, y = x.to(self.device), y.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(x), y)
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()

    def fit(self, epochs):
        for epoch in range(epochs):
            self.train_epoch()
            acc = self.validate()
            print(epoch, acc)


if __name__ == "__main__":
    torch.manual_seed(0)
    Trainer(build_model(), make_loader("train"), make_loader("val")).fit(10)
