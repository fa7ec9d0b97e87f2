# Follows: wkentaro/pytorch-fcn#56 ("Return to train mode after validation": validation mid-epoch leaves model in eval mode)
import argparse

import torch
import torchvision

from trainer import SegTrainer


def main(train_loader, val_loader):
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-epoch", type=int, default=40)
    ap.add_argument("--lr", type=float, default=1e-10)
    ap.add_argument("--val-interval", type=int, default=4000)
    args = ap.parse_args()
    device = torch.device("cuda")
    model = torchvision.models.segmentation.fcn_resnet50(num_classes=21).to(device)
    optim = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.99, weight_decay=5e-4)
    trainer = SegTrainer(model, optim, train_loader, val_loader, device, val_interval=args.val_interval)
    trainer.train(args.max_epoch)
