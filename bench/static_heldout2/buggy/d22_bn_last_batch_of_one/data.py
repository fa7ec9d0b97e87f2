# Follows: openvinotoolkit/nncf#379 (last batch of size 1 -> "Expected more than 1 value per channel when training")
import torch
from torch.utils.data import DataLoader, TensorDataset


def make_tabular_splits(n_train=4001, n_val=1000, n_features=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_features, generator=g)
    def split(n):
        x = torch.randn(n, n_features, generator=g)
        y = (x @ w + 0.1 * torch.randn(n, generator=g) > 0).long()
        return TensorDataset(x, y)
    return split(n_train), split(n_val)


def make_loaders(batch_size=32, **kw):
    train_ds, val_ds = make_tabular_splits(**kw)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True)  # bug: 4001 % 32 == 1 and drop_last unset -> final training batch has one sample
    val_loader = DataLoader(val_ds, batch_size=256)
    return train_loader, val_loader
