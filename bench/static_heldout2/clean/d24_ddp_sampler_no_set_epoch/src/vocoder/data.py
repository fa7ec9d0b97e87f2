# Follows: kan-bayashi/ParallelWaveGAN#177
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


class MelWavDataset(Dataset):
    def __init__(self, items, segment=8192, hop=256):
        self.items, self.segment, self.hop = items, segment, hop

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        mel, wav = self.items[i]
        frames = self.segment // self.hop
        start = torch.randint(0, max(mel.size(-1) - frames, 1), ()).item()
        return mel[:, start:start + frames], wav[start * self.hop:(start + frames) * self.hop]


def build_loader(items, batch_size, world_size, rank):
    ds = MelWavDataset(items)
    sampler = DistributedSampler(ds, num_replicas=world_size, rank=rank, shuffle=True)
    loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=4, pin_memory=True, drop_last=True)
    return loader, sampler
