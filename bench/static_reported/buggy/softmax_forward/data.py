import csv

import torch
from torch.utils.data import Dataset


class NewsDataset(Dataset):
    def __init__(self, path: str):
        with open(path) as f:
            self.rows = [(int(r[0]), [int(t) for t in r[1].split()]) for r in csv.reader(f)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def collate(batch):
    labels = torch.tensor([b[0] for b in batch])
    tokens = [torch.tensor(b[1]) for b in batch]
    offsets = torch.tensor([0] + [len(t) for t in tokens[:-1]]).cumsum(0)
    return torch.cat(tokens), offsets, labels
