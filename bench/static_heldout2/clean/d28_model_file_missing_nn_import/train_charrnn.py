# Follows: udacity/deep-learning-v2-pytorch#142
import argparse

import torch
import torch.nn as nn

from model import CharRNN, one_hot


def train(net, batches, n_chars, epochs=20, lr=1e-3, clip=5.0, device="cuda"):
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        net.train()
        h = None
        for x, y in batches():
            x, y = one_hot(x, n_chars).to(device), y.to(device)
            h = net.init_hidden(x.size(0), device) if h is None else tuple(t.detach() for t in h)
            opt.zero_grad()
            logits, h = net(x, h)
            loss = criterion(logits, y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
        print(f"epoch {epoch + 1}/{epochs} loss {loss.item():.4f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    from data import load_batches, VOCAB_SIZE  # project-local text pipeline

    train(CharRNN(VOCAB_SIZE, args.hidden), load_batches, VOCAB_SIZE, epochs=args.epochs)
