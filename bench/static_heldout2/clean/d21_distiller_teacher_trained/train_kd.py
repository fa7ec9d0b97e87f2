# Follows: haitongli/knowledge-distillation-pytorch#25
import argparse

import torch
from torchvision.models import resnet18, resnet50

from distill import Distiller


def main(train_loader, teacher_ckpt):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--T", type=float, default=4.0)
    args = ap.parse_args()
    teacher = resnet50(num_classes=100)
    teacher.load_state_dict(torch.load(teacher_ckpt, map_location="cpu"))
    distiller = Distiller(resnet18(num_classes=100), teacher, temperature=args.T).cuda()
    optimizer = torch.optim.SGD(distiller.student.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    for epoch in range(args.epochs):
        distiller.train()
        correct = seen = 0
        for x, y in train_loader:
            x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
            loss, logits = distiller(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.size(0)
        scheduler.step()
        print(f"epoch {epoch} train_acc {correct / seen:.4f}")
    torch.save(distiller.student.state_dict(), "student.pth")
