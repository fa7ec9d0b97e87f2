# Follows: huggingface/transformers#1703 (from_pretrained returns the model in eval mode; custom loops must call model.train())
import argparse
import math

import torch
from torch.optim import AdamW
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, get_scheduler


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--model_name_or_path", default="roberta-base")
    p.add_argument("--num_labels", type=int, default=3)
    p.add_argument("--learning_rate", type=float, default=2e-5)
    p.add_argument("--num_train_epochs", type=int, default=3)
    p.add_argument("--warmup_ratio", type=float, default=0.06)
    p.add_argument("--gradient_accumulation_steps", type=int, default=2)
    p.add_argument("--output_dir", default="out")
    return p.parse_args()


def main(train_dataloader):
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path, num_labels=args.num_labels)
    model.to(device)  # bug: model stays in the eval mode from_pretrained() left it in; model.train() is never called
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = AdamW(groups, lr=args.learning_rate)
    updates_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_steps = args.num_train_epochs * updates_per_epoch
    lr_scheduler = get_scheduler(
        "linear", optimizer=optimizer,
        num_warmup_steps=int(args.warmup_ratio * max_steps), num_training_steps=max_steps,
    )
    progress = tqdm(range(max_steps))
    for epoch in range(args.num_train_epochs):
        for step, batch in enumerate(train_dataloader):
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss / args.gradient_accumulation_steps
            loss.backward()
            if (step + 1) % args.gradient_accumulation_steps == 0 or step == len(train_dataloader) - 1:
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
                progress.update(1)
                progress.set_postfix(loss=loss.item() * args.gradient_accumulation_steps)
    model.save_pretrained(args.output_dir)
