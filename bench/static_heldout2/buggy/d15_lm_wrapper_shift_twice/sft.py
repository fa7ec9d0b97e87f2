# Follows: huggingface/transformers#44642 (causal LM labels are shifted internally; pre-shifted labels train next-next-token prediction)
from dataclasses import dataclass

import torch
import torch.nn as nn
from transformers import AutoModelForCausalLM


@dataclass
class SFTConfig:
    model_name: str = "Qwen/Qwen2.5-0.5B"
    lr: float = 1e-5
    epochs: int = 1
    grad_clip: float = 1.0
    device: str = "cuda"


class CausalLMObjective(nn.Module):
    """Wraps a HF causal LM and masks the prompt part of every sequence out of the loss."""

    def __init__(self, model_name):
        super().__init__()
        self.lm = AutoModelForCausalLM.from_pretrained(model_name, torch_dtype=torch.bfloat16)

    def forward(self, input_ids, attention_mask, prompt_lens):
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        labels = labels.masked_fill(positions[None, :] < prompt_lens[:, None], -100)
        out = self.lm(
            input_ids=input_ids[:, :-1],  # bug: manual next-token shift...
            attention_mask=attention_mask[:, :-1],
            labels=labels[:, 1:],  # bug: ...on top of the shift the HF model already applies to `labels`
        )
        return out.loss


def train(cfg, loader):
    objective = CausalLMObjective(cfg.model_name).to(cfg.device)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=cfg.lr, weight_decay=0.0)
    for epoch in range(cfg.epochs):
        objective.train()
        for step, batch in enumerate(loader):
            batch = {k: v.to(cfg.device) for k, v in batch.items()}
            loss = objective(batch["input_ids"], batch["attention_mask"], batch["prompt_lens"])
            loss.backward()
            nn.utils.clip_grad_norm_(objective.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step % 20 == 0:
                print(f"epoch {epoch} step {step} loss {loss.item():.4f}")
    objective.lm.save_pretrained("sft-out")
