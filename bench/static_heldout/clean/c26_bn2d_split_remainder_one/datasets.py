# Follows: NRCan/geo-deep-learning#113 ("For models with batch_norm, drop last batch if it has only one item")
import torch
from torch.utils.data import DataLoader, Dataset, random_split


class TileDataset(Dataset):
    """12,017 image/mask tiles stored as one tensor file."""

    def __init__(self, path):
        blob = torch.load(path)
        self.images, self.masks = blob["images"], blob["masks"]

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i].float() / 255.0, self.masks[i].long()


def build_loaders(path, batch_size=32, val_size=2000, seed=0):
    full = TileDataset(path)
    train_ds, val_ds = random_split(full, [len(full) - val_size, val_size], generator=torch.Generator().manual_seed(seed))
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=4, drop_last=True)
    val_loader = DataLoader(val_ds, batch_size=batch_size, num_workers=4)
    return train_loader, val_loader
