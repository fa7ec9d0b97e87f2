import argparse

from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from lm_trainer import CausalLMFinetuner


def main(tokenized_dataset):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt2")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.model)
    tok.pad_token = tok.eos_token
    collator = DataCollatorForLanguageModeling(tok, mlm=False)
    loader = DataLoader(tokenized_dataset, batch_size=args.batch_size, shuffle=True, collate_fn=collator)
    trainer = CausalLMFinetuner(args.model)
    trainer.train(loader, args.epochs)
    trainer.model.save_pretrained("finetuned")
