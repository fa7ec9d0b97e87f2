# Follows: Azure/MS-AMP#45 ("add scaler.update() in MNIST examples"; step() has already been called since the last update())
import torch


def backward_and_step(loss, optimizer, scaler, params=None, max_norm=None):
    scaler.scale(loss).backward()
    if max_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)  # bug: scaler.update() never called after step()
    optimizer.zero_grad(set_to_none=True)
