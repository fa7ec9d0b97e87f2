# Follows: udacity/deep-learning-v2-pytorch#3 (validation inside the training function without model.eval(); model has dropout)
import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(64 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, 10)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = self.dropout(x.flatten(1))
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def fit(model, train_loader, valid_loader, n_epochs, lr, save_path="model_cifar.pt"):
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    valid_loss_min = np.inf
    for epoch in range(1, n_epochs + 1):
        train_loss = valid_loss = 0.0
        model.train()
        for data, target in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * data.size(0)
        model.eval()
        with torch.no_grad():
            for data, target in valid_loader:
                loss = criterion(model(data), target)
                valid_loss += loss.item() * data.size(0)
        train_loss /= len(train_loader.sampler)
        valid_loss /= len(valid_loader.sampler)
        print(f"Epoch {epoch}: train {train_loss:.6f} valid {valid_loss:.6f}")
        if valid_loss <= valid_loss_min:
            torch.save(model.state_dict(), save_path)
            valid_loss_min = valid_loss


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=0.01)
    args = ap.parse_args()
    train_loader = valid_loader = None  # built from CIFAR-10 with SubsetRandomSampler in the notebook
    fit(Net(), train_loader, valid_loader, args.epochs, args.lr)
