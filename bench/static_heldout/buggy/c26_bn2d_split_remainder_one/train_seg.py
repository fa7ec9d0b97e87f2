import argparse

import torch
import torch.nn as nn

from datasets import build_loaders


class SegNetLite(nn.Module):
    def __init__(self, in_ch=4, classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.context = nn.Sequential(nn.Conv2d(64, 64, 1), nn.BatchNorm2d(64), nn.ReLU())
        self.classifier = nn.Conv2d(64 + 64, classes, 1)
        self.stem = nn.Sequential(nn.Conv2d(in_ch, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU())

    def forward(self, x):
        local = self.stem(x)
        glob = self.context(self.features(x)).expand_as(local)
        return self.classifier(torch.cat([local, glob], dim=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", default="tiles.pt")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    train_loader, val_loader = build_loaders(args.tiles, batch_size=args.batch_size)
    model = SegNetLite().cuda()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    for epoch in range(args.epochs):
        model.train()
        for img, mask in train_loader:
            loss = criterion(model(img.cuda()), mask.cuda())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} done, last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
