# After wolny/pytorch-3dunet#53 and ipolharvard/ethos-ares#20: validation runs under no_grad but
# without model.eval(), so dropout and BatchNorm stay in training mode and the metrics are off.
import torch
import torch.nn as nn


class Trainer:
    def __init__(self, model, train_loader, val_loader, lr=1e-4):
        self.model = model
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.loss_fn = nn.BCEWithLogitsLoss()

    def fit(self, epochs: int):
        torch.manual_seed(0)
        for epoch in range(epochs):
            self.model.train()
            for x, y in self.train_loader:
                self.optimizer.zero_grad()
                loss = self.loss_fn(self.model(x), y)
                loss.backward()
                self.optimizer.step()
            val_loss = 0.0
            with torch.no_grad():  # expect: LC203
                for x, y in self.val_loader:
                    val_loss += self.loss_fn(self.model(x), y).item()
            print(f"epoch {epoch}: val loss {val_loss / len(self.val_loader):.4f}")
