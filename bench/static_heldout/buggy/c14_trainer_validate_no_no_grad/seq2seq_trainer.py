# Follows: OpenNMT/OpenNMT-py#1141 ("torch.no_grad() is not used in validate()")
import math

import torch
import torch.nn as nn


class Seq2SeqTrainer:
    def __init__(self, model, optimizer, pad_idx, device, max_grad_norm=1.0):
        self.model = model
        self.optimizer = optimizer
        self.criterion = nn.CrossEntropyLoss(ignore_index=pad_idx, reduction="sum")
        self.pad_idx = pad_idx
        self.device = device
        self.max_grad_norm = max_grad_norm

    def _loss(self, src, tgt):
        logits = self.model(src, tgt[:, :-1])
        gold = tgt[:, 1:]
        loss = self.criterion(logits.reshape(-1, logits.size(-1)), gold.reshape(-1))
        return loss, (gold != self.pad_idx).sum()

    def train_epoch(self, loader):
        self.model.train()
        for src, tgt in loader:
            src, tgt = src.to(self.device), tgt.to(self.device)
            loss, n_tokens = self._loss(src, tgt)
            self.optimizer.zero_grad()
            (loss / n_tokens).backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()

    def validate(self, loader):
        self.model.eval()
        total, tokens = 0.0, 0
        for src, tgt in loader:  # bug: validation forward passes run with autograd enabled (no torch.no_grad)
            src, tgt = src.to(self.device), tgt.to(self.device)
            loss, n_tokens = self._loss(src, tgt)
            total += loss.item()
            tokens += n_tokens.item()
        return math.exp(total / tokens)

    def train(self, train_loader, valid_loader, epochs):
        for epoch in range(epochs):
            self.train_epoch(train_loader)
            print(f"epoch {epoch}: valid ppl {self.validate(valid_loader):.2f}")
