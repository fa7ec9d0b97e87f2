# Follows: huggingface/transformers#562
import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

from data import make_loader


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--train_file", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-5)
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.model)
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model).cuda()
    with open(args.train_file) as f:
        loader = make_loader(tok, f.readlines())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    sched = get_scheduler("cosine", opt, num_warmup_steps=100, num_training_steps=args.epochs * len(loader))
    for epoch in range(args.epochs):
        model.train()
        for step, batch in enumerate(loader):
            batch = {k: v.cuda() for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            if step % 100 == 0:
                print(f"epoch {epoch} step {step} ppl {torch.exp(loss).item():.2f}")
    model.save_pretrained("clm-out")


if __name__ == "__main__":
    main()
