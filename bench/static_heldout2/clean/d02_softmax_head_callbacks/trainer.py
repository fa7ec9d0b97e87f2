# Follows: gitabcworld/MatchingNetworks#5
import argparse

import torch
import torch.nn.functional as F

from heads import TextCNN


class Callback:
    def on_epoch_end(self, trainer, epoch, logs):
        pass


class PrintLogger(Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        print(f"epoch {epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()))


class Trainer:
    def __init__(self, model, optimizer, device, callbacks=()):
        self.model = model.to(device)
        self.optimizer = optimizer
        self.device = device
        self.callbacks = list(callbacks)

    def training_step(self, batch):
        tokens, labels = (t.to(self.device) for t in batch)
        out = self.model(tokens)
        return F.cross_entropy(out, labels)

    def fit(self, loader, epochs):
        for epoch in range(epochs):
            self.model.train()
            total = 0.0
            for batch in loader:
                self.optimizer.zero_grad()
                loss = self.training_step(batch)
                loss.backward()
                self.optimizer.step()
                total += loss.item()
            logs = {"loss": total / len(loader)}
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)


def main(train_loader, vocab_size, num_classes):
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = TextCNN(vocab_size, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    Trainer(model, opt, device, callbacks=[PrintLogger()]).fit(train_loader, args.epochs)
