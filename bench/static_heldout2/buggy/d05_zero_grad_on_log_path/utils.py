# Follows: yastrebksv/TennisCourtDetector#7 (no optimizer.zero_grad() in the trainer step)
import logging

import torch

logger = logging.getLogger("train")


def grad_norm(model):
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def optimizer_step(model, optimizer, step, max_norm=1.0, log_every=100):
    """Clip, step, and periodically report the gradient norm."""
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    if step % log_every == 0:
        logger.info("step %d grad-norm %.3f lr %.2e", step, grad_norm(model), optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()  # bug: gradients only cleared on logging steps; accumulate for the other 99 steps
