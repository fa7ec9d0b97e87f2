# Follows: pytorch/pytorch#47175 (forgetting optimizer.zero_grad() so gradients accumulate across iterations)
import torch


def train_one_epoch(model, loader, criterion, optimizer, device, epoch, print_freq=50):
    model.train()
    running_loss = 0.0
    for i, (inputs, targets) in enumerate(loader):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()  # bug: gradients are never cleared, so they accumulate across batches
        optimizer.step()
        running_loss += loss.item()
        if i % print_freq == 0:
            print(f"[{epoch}, {i}] loss: {running_loss / (i + 1):.3f}")
    return running_loss / len(loader)


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    for inputs, targets in loader:
        preds = model(inputs.to(device)).argmax(1)
        correct += (preds.cpu() == targets).sum().item()
        total += targets.numel()
    return correct / total
