import torch
import torch.nn.functional as F


class ClassificationTrainer:
    def __init__(self, model, optimizer, scheduler, device):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device

    def train_step(self, batch):
        x, y = batch[0].to(self.device), batch[1].to(self.device)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def train_epoch(self, loader):
        self.model.train()
        return sum(self.train_step(b) for b in loader) / len(loader)

    @torch.no_grad()
    def evaluate(self, loader):
        self.model.eval()
        hits = sum((self.model(x.to(self.device)).argmax(-1).cpu() == y).sum().item() for x, y in loader)
        return hits / len(loader.dataset)

    def fit(self, train_loader, val_loader, epochs):
        for epoch in range(epochs):
            loss = self.train_epoch(train_loader)
            self.scheduler.step()
            acc = self.evaluate(val_loader)
            print(f"epoch {epoch}: loss {loss:.4f} acc {acc:.4f} lr {self.scheduler.get_last_lr()[0]:.2e}")
