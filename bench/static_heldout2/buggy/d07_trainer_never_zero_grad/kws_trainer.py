# Follows: wenet-e2e/wekws#73 (optimizer.zero_grad() never called in executor.py training loop)
import torch
import torch.nn as nn
import torch.nn.functional as F


class KWSModel(nn.Module):
    def __init__(self, n_mels=40, hidden=128, n_keywords=12):
        super().__init__()
        self.gru = nn.GRU(n_mels, hidden, num_layers=2, batch_first=True, dropout=0.1)
        self.classifier = nn.Linear(hidden, n_keywords)

    def forward(self, feats):
        out, _ = self.gru(feats)
        return self.classifier(out.mean(dim=1))


class Executor:
    def __init__(self, model, optimizer, device, grad_clip=5.0, log_interval=50):
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.grad_clip = grad_clip
        self.log_interval = log_interval
        self.step = 0

    def _train_batch(self, feats, targets):
        logits = self.model(feats.to(self.device))
        loss = F.cross_entropy(logits, targets.to(self.device))
        loss.backward()  # bug: .grad is never zeroed anywhere, so gradients from all previous batches are summed in
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if torch.isfinite(grad_norm):
            self.optimizer.step()
        return loss.item()

    def train_epoch(self, loader, epoch):
        self.model.train()
        for batch_idx, (feats, targets) in enumerate(loader):
            loss = self._train_batch(feats, targets)
            self.step += 1
            if batch_idx % self.log_interval == 0:
                print(f"epoch {epoch} batch {batch_idx} loss {loss:.4f}")

    @torch.no_grad()
    def cv(self, loader):
        self.model.eval()
        total, correct = 0, 0
        for feats, targets in loader:
            pred = self.model(feats.to(self.device)).argmax(-1).cpu()
            correct += (pred == targets).sum().item()
            total += targets.numel()
        return correct / max(total, 1)


def run(train_loader, cv_loader, epochs=80, lr=1e-3, device="cuda"):
    model = KWSModel().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    executor = Executor(model, optimizer, device)
    for epoch in range(epochs):
        executor.train_epoch(train_loader, epoch)
        print(f"epoch {epoch} cv_acc {executor.cv(cv_loader):.4f}")
