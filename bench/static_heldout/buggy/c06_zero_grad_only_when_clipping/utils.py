import torch


def optimizer_step(model, optimizer, max_grad_norm=None):
    """Apply one update. Optionally clip gradients first."""
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
    else:
        optimizer.step()  # bug: on this path gradients are never zeroed and keep accumulating


class AverageMeter:
    def __init__(self):
        self.sum = 0.0
        self.count = 0

    def update(self, val, n=1):
        self.sum += val * n
        self.count += n

    @property
    def avg(self):
        return self.sum / max(self.count, 1)
