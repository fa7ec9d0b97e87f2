# Follows: asyml/texar-pytorch#310 (after _eval_epoch() the model is never switched back with model.train())
import torch


def train_one_epoch(model, loader, criterion, optimizer, device, print_freq=100):
    total, n = 0.0, 0
    for i, (x, y) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * x.size(0)
        n += x.size(0)
        if i % print_freq == 0:
            print(f"  it {i} loss {loss.item():.4f}")
    return total / n


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()  # bug: switches Dropout/BatchNorm to eval; nothing switches them back before the next epoch
    correct, n = 0, 0
    for x, y in loader:
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
        n += y.numel()
    return correct / n
