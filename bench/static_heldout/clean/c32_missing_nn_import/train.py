import argparse

import torch
import torch.nn.functional as F

from model import UNetResNet50


def main(loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    model = UNetResNet50(n_classes=2).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        model.train()
        for img, mask in loader:
            logits = model(img.cuda())
            logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear", align_corners=False)
            loss = F.cross_entropy(logits, mask.cuda())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(epoch, loss.item())
