# Follows: huggingface/transformers#1703 (PreTrainedModel.from_pretrained sets eval mode; dropout stays off unless model.train() is called)
import math

import torch
from transformers import AutoModelForCausalLM


class CausalLMFinetuner:
    def __init__(self, model_name, lr=5e-5, grad_accum=4, device="cuda"):
        self.device = device
        self.model = AutoModelForCausalLM.from_pretrained(model_name).to(device)  # bug: loaded in eval mode, never switched to train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr)
        self.grad_accum = grad_accum
        self.step = 0

    def training_step(self, batch):
        batch = {k: v.to(self.device) for k, v in batch.items()}
        out = self.model(**batch)
        (out.loss / self.grad_accum).backward()
        self.step += 1
        if self.step % self.grad_accum == 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.optimizer.zero_grad()
        return out.loss.item()

    def train(self, loader, epochs):
        for epoch in range(epochs):
            losses = [self.training_step(b) for b in loader]
            mean = sum(losses) / len(losses)
            print(f"epoch {epoch}: loss {mean:.3f} ppl {math.exp(mean):.1f}")
