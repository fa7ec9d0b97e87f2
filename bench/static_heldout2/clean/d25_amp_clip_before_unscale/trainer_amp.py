# Follows: milesial/Pytorch-UNet#468 ("Gradients are clipped before the unscaling")
import torch
import torch.nn as nn
import torch.nn.functional as F


def dice_loss(logits, target, eps=1e-6):
    probs = logits.softmax(1)
    onehot = F.one_hot(target, probs.size(1)).permute(0, 3, 1, 2).float()
    inter = (probs * onehot).sum((2, 3))
    union = probs.sum((2, 3)) + onehot.sum((2, 3))
    return 1 - ((2 * inter + eps) / (union + eps)).mean()


class AmpTrainer:
    def __init__(self, model, lr=1e-5, grad_clip=1.0, device="cuda"):
        self.model = model.to(device)
        self.device = device
        self.grad_clip = grad_clip
        self.optimizer = torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=1e-8, momentum=0.999)
        self.scaler = torch.cuda.amp.GradScaler()
        self.criterion = nn.CrossEntropyLoss()

    def step(self, images, masks):
        images = images.to(self.device, memory_format=torch.channels_last)
        masks = masks.to(self.device, dtype=torch.long)
        with torch.autocast("cuda", dtype=torch.float16):
            logits = self.model(images)
            loss = self.criterion(logits, masks) + dice_loss(logits.float(), masks)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item()

    def train(self, loader, epochs):
        for epoch in range(epochs):
            self.model.train()
            total = sum(self.step(images, masks) for images, masks in loader)
            print(f"epoch {epoch} loss {total / len(loader):.4f}")
