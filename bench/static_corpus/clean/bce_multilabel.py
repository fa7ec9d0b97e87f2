# ruff: noqa
import torch
import torch.nn as nn


class Tagger(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(256, n)

    def forward(self, x):
        return self.head(self.body(x))


def train(model, loader, val_loader, epochs, device):
    crit = nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device).float()
            logits = model(x)
            loss = crit(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                probs = torch.sigmoid(model(x.to(device)))
                preds = probs > 0.5


if __name__ == "__main__":
    torch.manual_seed(0)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    m = Tagger(64, 10).to(dev)
    train(m, make_loader("train"), make_loader("val"), 5, dev)
