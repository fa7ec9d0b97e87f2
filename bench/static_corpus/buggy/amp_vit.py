# ruff: noqa
import timm
import torch
from torch.cuda.amp import GradScaler, autocast


def train(model, loader, epochs, device="cuda"):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.05)
    scaler = GradScaler()  # expect: LC403
    for epoch in range(epochs):
        model.train()
        for images, targets in loader:
            images, targets = images.to(device), targets.to(device)
            opt.zero_grad()
            with autocast():  # expect: LC403
                loss = torch.nn.functional.cross_entropy(model(images), targets)
            scaler.scale(loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # expect: LC106
            scaler.step(opt)
            scaler.update()


if __name__ == "__main__":
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_224", num_classes=100).cuda()
    train(model, make_loader(), 10)
