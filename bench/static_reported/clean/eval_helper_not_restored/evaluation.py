# After tk-rusch/coRNN#1 and shubhamagarwal92/mmd#14: an evaluation helper switches the model to
# eval() and the training loop never switches it back.
import torch


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    for x, y in loader:
        pred = model(x.to(device)).argmax(dim=-1)
        correct += (pred == y.to(device)).sum().item()
        total += y.numel()
    model.train()
    return correct / max(total, 1)
