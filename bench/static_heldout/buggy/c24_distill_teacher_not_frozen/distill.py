# Follows: pytorch/translate PR #391 ("dual-decoder: teacher_probs.detach()" to stop KD-loss gradient flowing into the teacher)
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    soft_teacher = F.softmax(teacher_logits / T, dim=1)
    soft_student = F.log_softmax(student_logits / T, dim=1)
    kd = F.kl_div(soft_student, soft_teacher, reduction="batchmean") * (T * T)
    ce = F.cross_entropy(student_logits, labels)
    return alpha * kd + (1.0 - alpha) * ce


def train_epoch(student, teacher, loader, optimizer, device, args):
    student.train()
    teacher.eval()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        teacher_logits = teacher(images)  # bug: teacher forward with grad enabled; KD loss backpropagates into the unfrozen teacher
        student_logits = student(images)
        loss = kd_loss(student_logits, teacher_logits, labels, args.temperature, args.alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(train_loader, teacher_ckpt):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    args = ap.parse_args()
    device = "cuda"
    teacher = torchvision.models.resnet50(num_classes=100)
    teacher.load_state_dict(torch.load(teacher_ckpt, map_location="cpu"))
    teacher.to(device)
    student = torchvision.models.mobilenet_v3_small(num_classes=100).to(device)
    optimizer = torch.optim.SGD(student.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[100, 150], gamma=0.1)
    for epoch in range(args.epochs):
        train_epoch(student, teacher, train_loader, optimizer, device, args)
        scheduler.step()
