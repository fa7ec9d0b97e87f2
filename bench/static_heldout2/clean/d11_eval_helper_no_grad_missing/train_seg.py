# Follows: hszhao/semseg#60
import argparse

import torch
import torch.nn as nn
from torchvision.models.segmentation import deeplabv3_resnet50

from metrics import validate


class SegWrapper(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.net = deeplabv3_resnet50(weights=None, num_classes=num_classes, aux_loss=False)

    def forward(self, x):
        return self.net(x)["out"]


def main(train_loader, val_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.01)
    args = ap.parse_args()
    device = torch.device("cuda")
    model = SegWrapper(args.classes).to(device)
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    for epoch in range(args.epochs):
        model.train()
        for images, masks in train_loader:
            images, masks = images.to(device), masks.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), masks)
            loss.backward()
            optimizer.step()
        val_loss, miou = validate(model, val_loader, criterion, args.classes, device)
        print(f"epoch {epoch} val_loss {val_loss:.4f} mIoU {miou:.4f}")
