import torch
import torch.nn.functional as F


class SegTrainer:
    def __init__(self, model, optimizer, train_loader, val_loader, device, val_interval=500):
        self.model = model
        self.optim = optimizer
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.device = device
        self.val_interval = val_interval
        self.iteration = 0
        self.best_miou = 0.0

    def validate(self):
        self.model.eval()
        inter = torch.zeros(21)
        union = torch.zeros(21)
        with torch.no_grad():
            for img, lbl in self.val_loader:
                pred = self.model(img.to(self.device))["out"].argmax(1).cpu()
                for c in range(21):
                    inter[c] += ((pred == c) & (lbl == c)).sum()
                    union[c] += ((pred == c) | (lbl == c)).sum()
        miou = (inter / union.clamp(min=1)).mean().item()
        self.best_miou = max(self.best_miou, miou)
        print(f"iter {self.iteration}: mIoU {miou:.4f}")
        self.model.train()

    def train_epoch(self):
        self.model.train()
        for img, lbl in self.train_loader:
            if self.iteration % self.val_interval == 0:
                self.validate()
            img, lbl = img.to(self.device), lbl.to(self.device)
            score = self.model(img)["out"]
            loss = F.cross_entropy(score, lbl, ignore_index=255)
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()
            self.iteration += 1

    def train(self, max_epoch):
        for _ in range(max_epoch):
            self.train_epoch()
