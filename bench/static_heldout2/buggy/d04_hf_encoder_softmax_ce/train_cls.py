# Follows: lansinuote/Huggingface_Toturials#6 (Model.forward returns out.softmax(dim=1), trained with CrossEntropyLoss)
import argparse

import torch
import torch.nn as nn
from transformers import AutoModel, get_scheduler


class SentimentModel(nn.Module):
    def __init__(self, name, num_labels, dropout=0.1):
        super().__init__()
        self.encoder = AutoModel.from_pretrained(name)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        out = self.fc(self.dropout(hidden[:, 0]))
        return out.softmax(dim=1)  # bug: probabilities returned, train() feeds them to CrossEntropyLoss


def train(args, train_loader):
    device = torch.device(args.device)
    model = SentimentModel(args.model_name, args.num_labels).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    num_steps = args.epochs * len(train_loader)
    scheduler = get_scheduler(
        "linear", optimizer, num_warmup_steps=int(0.1 * num_steps), num_training_steps=num_steps
    )
    criterion = nn.CrossEntropyLoss()  # bug: expects raw logits, gets softmax output
    for epoch in range(args.epochs):
        model.train()
        for step, batch in enumerate(train_loader):
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model(batch["input_ids"], batch["attention_mask"])
            loss = criterion(out, batch["labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if step % 50 == 0:
                acc = (out.argmax(dim=1) == batch["labels"]).float().mean().item()
                print(f"epoch {epoch} step {step} loss {loss.item():.4f} acc {acc:.3f}")
    return model


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--model_name", default="bert-base-chinese")
    p.add_argument("--num_labels", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cuda")
    return p.parse_args()
