# After the stgcn/ivadomed reports, in the shape most projects have: the per-batch loop lives in a
# train_one_epoch helper that is handed an epoch-sized scheduler.
import torch


def train_one_epoch(model, loader, optimizer, scheduler, loss_fn):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()  # expect: LC112
