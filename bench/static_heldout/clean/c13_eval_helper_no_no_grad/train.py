import argparse

import torch
import torch.nn as nn
import torchvision

from evaluate import validate


def train_epoch(train_loader, model, criterion, optimizer):
    model.train()
    for images, target in train_loader:
        images, target = images.cuda(non_blocking=True), target.cuda(non_blocking=True)
        loss = criterion(model(images)["out"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


class OutOnly(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def main(train_loader, val_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--classes", type=int, default=19)
    args = ap.parse_args()
    net = torchvision.models.segmentation.deeplabv3_resnet50(num_classes=args.classes).cuda()
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    for epoch in range(args.epochs):
        train_epoch(train_loader, net, criterion, optimizer)
        loss, miou = validate(val_loader, OutOnly(net), criterion, args.classes)
        print(f"epoch {epoch}: val loss {loss:.4f} mIoU {miou:.4f}")
