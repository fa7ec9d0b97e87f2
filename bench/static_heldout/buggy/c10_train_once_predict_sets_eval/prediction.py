# Follows: joeynmt/joeynmt#184 (validation calls a prediction helper that sets model.eval(); training resumes in eval mode)
import torch


def predict(model, loader, device):
    model.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for src, tgt in loader:
            logits = model(src.to(device))
            outputs.append(logits.argmax(-1).cpu())
            targets.append(tgt)
    return torch.cat(outputs), torch.cat(targets)


def validate(model, loader, device):
    preds, gold = predict(model, loader, device)
    return (preds == gold).float().mean().item()
