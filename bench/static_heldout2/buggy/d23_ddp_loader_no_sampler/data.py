# Follows: binbinao/physicsnemo-from-zero-to-one#143 (DDP with DataLoader(shuffle=True) and no DistributedSampler: every rank sees the same data)
import torch
from torch.utils.data import DataLoader, Dataset


class NpzFieldDataset(Dataset):
    def __init__(self, path):
        import numpy as np
        arr = np.load(path)
        self.x = torch.from_numpy(arr["inputs"]).float()
        self.y = torch.from_numpy(arr["targets"]).float()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def build_train_loader(path, batch_size, num_workers=4):
    ds = NpzFieldDataset(path)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers,  # bug: no DistributedSampler; each DDP rank iterates the full dataset
                      pin_memory=True, drop_last=True)
