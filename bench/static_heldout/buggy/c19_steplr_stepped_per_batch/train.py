# Follows: ivadomed/ivadomed PR #55 ("Scheduler was incorrectly stepped in the batch loop instead of in the epoch loop")
import argparse

import torch
import torch.nn as nn
import torchvision


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--lr-step", type=int, default=30, help="decay LR every N epochs")
    p.add_argument("--gamma", type=float, default=0.1)
    return p.parse_args()


def main(train_loader, val_loader):
    args = parse()
    model = torchvision.models.resnet34(num_classes=100).cuda()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.gamma)
    for epoch in range(args.epochs):
        model.train()
        for images, target in train_loader:
            images, target = images.cuda(), target.cuda()
            loss = criterion(model(images), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()  # bug: epoch-based StepLR stepped every batch, LR collapses after 30 iterations
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, target in val_loader:
                correct += (model(images.cuda()).argmax(1).cpu() == target).sum().item()
        print(f"epoch {epoch} lr {scheduler.get_last_lr()[0]:.5f} acc {correct / len(val_loader.dataset):.4f}")
