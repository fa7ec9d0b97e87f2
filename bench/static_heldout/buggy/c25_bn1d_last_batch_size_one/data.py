# Follows: pytorch/pytorch#7716 (BatchNorm1d fails when the last batch has size 1: dataset_size % batch_size == 1)
import torch
from torch.utils.data import DataLoader, TensorDataset

N_TRAIN = 8193
N_FEATURES = 24
BATCH_SIZE = 128


def make_loaders(features, targets):
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)
    train_ds = TensorDataset(x[:N_TRAIN], y[:N_TRAIN])
    val_ds = TensorDataset(x[N_TRAIN:], y[N_TRAIN:])
    train_loader = DataLoader(train_ds, batch_size=BATCH_SIZE, shuffle=True)  # bug: 8193 % 128 == 1, last training batch has one row (BatchNorm1d error)
    val_loader = DataLoader(val_ds, batch_size=512)
    return train_loader, val_loader
