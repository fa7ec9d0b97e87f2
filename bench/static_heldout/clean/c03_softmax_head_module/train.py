import argparse

import torch
import torch.nn as nn

from model import TextCNN


def run_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    running = 0.0
    for step, (input_ids, labels) in enumerate(loader):
        input_ids, labels = input_ids.to(device), labels.to(device)
        optimizer.zero_grad()
        preds = model(input_ids)
        loss = loss_fn(preds, labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
        if step % 200 == 0:
            print(f"step {step}: {running / (step + 1):.4f}")


def main(train_loader, vocab_size):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = TextCNN(vocab_size).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for _ in range(args.epochs):
        run_epoch(model, train_loader, loss_fn, optimizer, device)
    torch.save(model.state_dict(), "textcnn.pt")
