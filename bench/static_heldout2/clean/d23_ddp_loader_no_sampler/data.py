# Follows: binbinao/physicsnemo-from-zero-to-one#143 (DDP with DataLoader(shuffle=True) and no DistributedSampler: every rank sees the same data)
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


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
    sampler = DistributedSampler(ds, shuffle=True, drop_last=True)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=True, drop_last=True)
