import argparse

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from data import create_loaders


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="train.csv")
    ap.add_argument("--val", default="val.csv")
    ap.add_argument("--model", default="distilbert-base-uncased")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2).cuda()
    train_loader, val_loader = create_loaders(args.train, args.val, tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-5)
    for epoch in range(args.epochs):
        model.train()
        for batch in train_loader:
            out = model(**{k: v.cuda() for k, v in batch.items()})
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for batch in val_loader:
                logits = model(**{k: v.cuda() for k, v in batch.items()}).logits
                correct += (logits.argmax(-1).cpu() == batch["labels"]).sum().item()
        print(f"epoch {epoch}: val acc {correct / len(val_loader.dataset):.4f}")


if __name__ == "__main__":
    main()
