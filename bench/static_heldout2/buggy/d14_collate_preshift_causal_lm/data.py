# Follows: huggingface/transformers#562 (remove the manual shift of LM labels: the shift happens inside the model's forward)
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset


class LineByLineDataset(Dataset):
    def __init__(self, tokenizer, lines, block_size=512):
        self.examples = [tokenizer(l, truncation=True, max_length=block_size)["input_ids"] for l in lines if l.strip()]

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return torch.tensor(self.examples[i], dtype=torch.long)


def collate_causal(examples, pad_id):
    ids = pad_sequence(examples, batch_first=True, padding_value=pad_id)
    attn = torch.zeros_like(ids)
    for i, e in enumerate(examples):
        attn[i, : len(e)] = 1
    labels = ids.masked_fill(attn == 0, -100)
    return {
        "input_ids": ids[:, :-1],  # bug: inputs/labels shifted by hand...
        "attention_mask": attn[:, :-1],
        "labels": labels[:, 1:],  # bug: ...and GPT2LMHeadModel shifts labels again internally (predicts token t+2)
    }


def make_loader(tokenizer, lines, batch_size=8):
    ds = LineByLineDataset(tokenizer, lines)
    return DataLoader(ds, batch_size=batch_size, shuffle=True,
                      collate_fn=lambda ex: collate_causal(ex, tokenizer.pad_token_id))
