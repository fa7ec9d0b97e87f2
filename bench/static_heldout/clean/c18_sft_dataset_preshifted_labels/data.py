# Follows: huggingface/transformers PR #562 (remove hand shifting of LM labels in preprocessing; the model shifts internally)
import torch
from torch.utils.data import Dataset

IGNORE_INDEX = -100


class SFTDataset(Dataset):
    def __init__(self, records, tokenizer, max_len=1024):
        self.examples = [self.build_example(r["prompt"], r["response"], tokenizer, max_len) for r in records]

    @staticmethod
    def build_example(prompt, response, tokenizer, max_len):
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        resp_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt_ids + resp_ids)[:max_len]
        labels = ([IGNORE_INDEX] * len(prompt_ids) + resp_ids)[:max_len]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
        }

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


def pad_collate(batch, pad_id):
    ids = torch.nn.utils.rnn.pad_sequence([b["input_ids"] for b in batch], batch_first=True, padding_value=pad_id)
    labels = torch.nn.utils.rnn.pad_sequence([b["labels"] for b in batch], batch_first=True, padding_value=IGNORE_INDEX)
    return {"input_ids": ids, "attention_mask": (ids != pad_id).long(), "labels": labels}
