# After the classic "loss explodes after a refactor": zero_grad moved into a helper that no
# longer clears the gradients the loop's optimizer steps.
import torch


def forward_backward(model, batch, loss_fn):
    x, y = batch
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.detach()
