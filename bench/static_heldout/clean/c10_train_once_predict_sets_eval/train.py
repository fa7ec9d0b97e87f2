import argparse

import torch
import torch.nn as nn

from prediction import validate


class Tagger(nn.Module):
    def __init__(self, vocab, num_tags, emb=100, hidden=256):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, num_layers=2, dropout=0.3, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(2 * hidden, num_tags)

    def forward(self, x):
        h, _ = self.rnn(self.drop(self.emb(x)))
        return self.out(self.drop(h))


def train(model, train_loader, dev_loader, args, device):
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    for epoch in range(args.epochs):
        model.train()
        for src, tgt in train_loader:
            src, tgt = src.to(device), tgt.to(device)
            logits = model(src)
            loss = loss_fn(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
        acc = validate(model, dev_loader, device)
        print(f"epoch {epoch}: dev acc {acc:.4f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--vocab", type=int, default=30000)
    ap.add_argument("--num-tags", type=int, default=18)
    args = ap.parse_args()
    model = Tagger(args.vocab, args.num_tags)
    train_loader = dev_loader = None  # provided by the data pipeline
    train(model, train_loader, dev_loader, args, "cpu")
