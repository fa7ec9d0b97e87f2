# Follows: fartashf/vsepp#4 (validate() every val_step iterations calls eval mode; train mode only restored next epoch)
import torch
import torch.nn.functional as F


class Callback:
    def on_step_end(self, trainer, step):
        pass


class PeriodicValidation(Callback):
    def __init__(self, loader, every=500):
        self.loader = loader
        self.every = every
        self.history = []

    def on_step_end(self, trainer, step):
        if step > 0 and step % self.every == 0:
            self.history.append((step, trainer.validate(self.loader)))  # bug: runs mid-epoch and leaves the model in eval mode


class Trainer:
    def __init__(self, model, optimizer, device, callbacks=()):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.callbacks = list(callbacks)
        self.global_step = 0

    @torch.no_grad()
    def validate(self, loader):
        self.model.eval()  # bug: no matching self.model.train() after validation
        losses = []
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            losses.append(F.cross_entropy(self.model(x), y).item())
        return sum(losses) / len(losses)

    def fit(self, loader, epochs):
        for epoch in range(epochs):
            self.model.train()
            for x, y in loader:
                x, y = x.to(self.device), y.to(self.device)
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(x), y)
                loss.backward()
                self.optimizer.step()
                self.global_step += 1
                for cb in self.callbacks:
                    cb.on_step_end(self, self.global_step)


def run(model, train_loader, val_loader, epochs=30, lr=2e-4, device="cuda"):
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    val_cb = PeriodicValidation(val_loader, every=500)
    Trainer(model, opt, device, callbacks=[val_cb]).fit(train_loader, epochs)
    return val_cb.history
