# Follows: hszhao/semseg#60 ("out of memory" during validation; fix is wrapping the forward in torch.no_grad())
import torch


def confusion_matrix(pred, target, num_classes, ignore_index=255):
    keep = target != ignore_index
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


@torch.no_grad()
def validate(model, loader, criterion, num_classes, device):
    model.eval()
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
    loss_sum, n = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        logits = model(images)
        loss_sum += criterion(logits, masks).item() * images.size(0)
        n += images.size(0)
        conf += confusion_matrix(logits.argmax(1), masks, num_classes)
    iou = conf.diag().float() / (conf.sum(0) + conf.sum(1) - conf.diag()).clamp(min=1).float()
    return loss_sum / n, iou.mean().item()
