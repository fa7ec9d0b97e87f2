import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from models import TabMLP


def main(csv_path="train.csv", epochs=20):
    torch.manual_seed(0)
    data = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.float32)
    x, y = torch.from_numpy(data[:, :-1]), torch.from_numpy(data[:, -1])
    train_loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True, drop_last=True)
    model = TabMLP(x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_loader:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main()
