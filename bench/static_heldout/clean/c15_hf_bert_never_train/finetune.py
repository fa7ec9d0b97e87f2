# Follows: huggingface/transformers#1703 (from_pretrained returns the model in eval mode; custom loop must call model.train())
import argparse

import torch
from torch.utils.data import DataLoader
from transformers import BertForSequenceClassification, BertTokenizerFast, get_linear_schedule_with_warmup


def collate(tokenizer, max_len):
    def fn(batch):
        texts, labels = zip(*batch)
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        enc["labels"] = torch.tensor(labels)
        return enc
    return fn


def train_loop(model, loader, optimizer, scheduler, device, epochs):
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            outputs = model(**batch)
            outputs.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total += outputs.loss.item()
        print(f"epoch {epoch}: loss {total / len(loader):.4f}")


def main(train_pairs):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="bert-base-uncased")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-len", type=int, default=128)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = BertTokenizerFast.from_pretrained(args.model)
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2).to(device)
    loader = DataLoader(train_pairs, batch_size=32, shuffle=True, collate_fn=collate(tokenizer, args.max_len))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    total_steps = len(loader) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total_steps), total_steps)
    train_loop(model, loader, optimizer, scheduler, device, args.epochs)
    model.save_pretrained("out/")
