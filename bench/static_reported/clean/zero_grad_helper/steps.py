import torch


def forward_backward(model, batch, loss_fn, optimizer):
    optimizer.zero_grad(set_to_none=True)
    x, y = batch
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.detach()
