# After milesial/Pytorch-UNet#468 and pytorch/examples#1196: gradients clipped while still
# multiplied by the GradScaler's loss scale.
import torch
import torch.nn.functional as F


def train_model(model, train_loader, device, epochs=5, lr=1e-5, amp=True, gradient_clipping=1.0):
    torch.manual_seed(0)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=1e-8, momentum=0.999)
    grad_scaler = torch.amp.GradScaler("cuda", enabled=amp)
    for epoch in range(1, epochs + 1):
        model.train()
        for images, true_masks in train_loader:
            images = images.to(device, non_blocking=True)
            true_masks = true_masks.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp):
                masks_pred = model(images)
                loss = F.cross_entropy(masks_pred, true_masks)
            optimizer.zero_grad(set_to_none=True)
            grad_scaler.scale(loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), gradient_clipping)  # expect: LC106
            grad_scaler.step(optimizer)
            grad_scaler.update()
