# Follows: lopuhin/kaggle-imet-2019#3 ("Sigmoid before BCEWithLogitsLoss")
import argparse

import torch
import torch.nn as nn
import torchvision


class MultiLabelNet(nn.Module):
    def __init__(self, num_classes, pretrained=True):
        super().__init__()
        weights = torchvision.models.ResNet50_Weights.DEFAULT if pretrained else None
        self.backbone = torchvision.models.resnet50(weights=weights)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, num_classes)

    def forward(self, images):
        return self.backbone(images)


def train_epoch(model, loader, criterion, optimizer, device):
    model.train()
    for images, targets in loader:
        images, targets = images.to(device), targets.float().to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images), targets)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def validate(model, loader, device, threshold=0.5):
    model.eval()
    tp = fp = fn = 0
    for images, targets in loader:
        probs = torch.sigmoid(model(images.to(device))).cpu()
        preds = probs > threshold
        targets = targets.bool()
        tp += (preds & targets).sum().item()
        fp += (preds & ~targets).sum().item()
        fn += (~preds & targets).sum().item()
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main(train_loader, val_loader, num_classes=1103):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    device = "cuda"
    model = MultiLabelNet(num_classes).to(device)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        train_epoch(model, train_loader, criterion, optimizer, device)
        print(epoch, "F1", validate(model, val_loader, device))
