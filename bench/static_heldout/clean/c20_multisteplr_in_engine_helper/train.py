import argparse

import torch
import torchvision

from engine import evaluate_loss, train_one_epoch


def main(train_loader, val_loader, num_classes):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=26)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--lr-steps", nargs="+", type=int, default=[16, 22], help="epochs at which to decay lr")
    args = ap.parse_args()
    device = torch.device("cuda")
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(num_classes=num_classes).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.lr_steps, gamma=0.1)
    for epoch in range(args.epochs):
        train_one_epoch(model, optimizer, train_loader, device, epoch)
        lr_scheduler.step()
        print(f"epoch {epoch}: val loss {evaluate_loss(model, val_loader, device):.4f}")
        torch.save({"model": model.state_dict(), "epoch": epoch}, f"model_{epoch}.pth")
