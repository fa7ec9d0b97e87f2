# Pattern, no specific report (misspelled variable name -> NameError only reached at the end of the first epoch)
import argparse
from functools import partial

import torch
import torch.nn as nn
from torch.utils.data import DataLoader


def collate(batch, max_len):
    seqs, labels = zip(*batch)
    x = torch.zeros(len(seqs), max_len, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : min(len(s), max_len)] = torch.as_tensor(s[:max_len])
    return x, torch.as_tensor(labels)


class BagOfEmbeddings(nn.Module):
    def __init__(self, vocab, dim=128, n_classes=4):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x):
        return self.fc(self.emb(x))


@torch.no_grad()
def accuracy(model, loader):
    model.eval()
    hits = [(model(x).argmax(1) == y).float().mean().item() for x, y in loader]
    return sum(hits) / len(hits)


def main(train_ds, valid_ds, vocab_size):
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    col = partial(collate, max_len=args.max_len)
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, collate_fn=col)
    valid_loader = DataLoader(valid_ds, batch_size=256, collate_fn=col)
    model = BagOfEmbeddings(vocab_size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        model.train()
        for x, y in train_loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        print(f"epoch {epoch} loss {loss.item():.4f} val_acc {accuracy(model, valid_loader):.4f}")
