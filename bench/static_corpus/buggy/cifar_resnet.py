# ruff: noqa
"""ResNet-18 on CIFAR-10: eval helper leaves the model in eval mode, softmax before CE."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from torch.utils.data import DataLoader


def get_loaders(bs):
    tf = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    train_set = torchvision.datasets.CIFAR10("data", train=True, download=True, transform=tf)
    test_set = torchvision.datasets.CIFAR10("data", train=False, download=True, transform=tf)
    train_loader = DataLoader(train_set, batch_size=bs, shuffle=True, num_workers=4, pin_memory=True)
    test_loader = DataLoader(test_set, batch_size=256, num_workers=4)
    return train_loader, test_loader


def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(1) == y).sum().item()
            total += y.numel()
    return correct / total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torchvision.models.resnet18(num_classes=10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    train_loader, test_loader = get_loaders(128)
    model.train()
    for epoch in range(args.epochs):  # expect: LC201
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            probs = F.softmax(model(x), dim=1)
            loss = F.cross_entropy(probs, y)  # expect: LC301
            loss.backward()
            opt.step()
        sched.step()
        print(epoch, evaluate(model, test_loader, device))
    torch.save(model.state_dict(), "resnet18.pt")


if __name__ == "__main__":
    main()
