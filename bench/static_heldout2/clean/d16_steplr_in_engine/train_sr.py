# Follows: Lornatang/SRGAN-PyTorch#1
import argparse

import torch
import torch.nn as nn

from engine import train_one_epoch


class SRResNetLite(nn.Module):
    def __init__(self, scale=4, ch=64, n_blocks=8):
        super().__init__()
        self.head = nn.Conv2d(3, ch, 9, padding=4)
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.PReLU()) for _ in range(n_blocks)])
        self.up = nn.Sequential(nn.Conv2d(ch, ch * scale * scale, 3, padding=1), nn.PixelShuffle(scale), nn.PReLU())
        self.tail = nn.Conv2d(ch, 3, 9, padding=4)

    def forward(self, x):
        h = self.head(x)
        return self.tail(self.up(h + self.body(h)))


def main(train_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    device = torch.device("cuda")
    model = SRResNetLite().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.epochs // 2, gamma=0.1)
    criterion = nn.MSELoss()
    for epoch in range(args.epochs):
        train_one_epoch(model, train_loader, criterion, optimizer, device, epoch)
        scheduler.step()
        torch.save({"epoch": epoch, "state_dict": model.state_dict()}, f"srresnet_{epoch}.pth")
