# Follows: huggingface/transformers#32944 / PR #44642 (users pre-shift causal-LM labels; the model shifts them again)
import argparse

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader
from transformers import GPT2LMHeadModel, GPT2TokenizerFast


def make_collate(pad_id):
    def collate(examples):
        ids = pad_sequence([torch.tensor(e) for e in examples], batch_first=True, padding_value=pad_id)
        attn = (ids != pad_id).long()
        inputs = ids[:, :-1]
        labels = ids[:, 1:].clone()  # bug: labels pre-shifted by hand; GPT2LMHeadModel shifts labels internally again
        labels[attn[:, 1:] == 0] = -100
        return {"input_ids": inputs, "attention_mask": attn[:, :-1], "labels": labels}
    return collate


def train(model, loader, optimizer, device, epochs):
    model.train()
    for epoch in range(epochs):
        for step, batch in enumerate(loader):
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 100 == 0:
                print(f"epoch {epoch} step {step} loss {loss.item():.4f}")


def main(token_lists):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    args = ap.parse_args()
    tok = GPT2TokenizerFast.from_pretrained("gpt2")
    model = GPT2LMHeadModel.from_pretrained("gpt2").cuda()
    loader = DataLoader(token_lists, batch_size=8, shuffle=True, collate_fn=make_collate(tok.eos_token_id))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    train(model, loader, optimizer, "cuda", args.epochs)
