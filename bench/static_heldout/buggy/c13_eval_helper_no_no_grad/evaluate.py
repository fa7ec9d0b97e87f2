# Follows: hszhao/semseg#60 ("out of memory" during validation: forward pass in validate() not under torch.no_grad())
import numpy as np
import torch


def intersection_and_union(pred, target, k, ignore_index=255):
    pred = pred.flatten()
    target = target.flatten()
    pred[target == ignore_index] = ignore_index
    inter = pred[pred == target]
    area_inter = torch.histc(inter.float(), bins=k, min=0, max=k - 1)
    area_pred = torch.histc(pred.float(), bins=k, min=0, max=k - 1)
    area_target = torch.histc(target.float(), bins=k, min=0, max=k - 1)
    return area_inter, area_pred + area_target - area_inter


def validate(val_loader, model, criterion, num_classes):
    model.eval()
    losses, inter_sum, union_sum = [], 0, 0
    for images, target in val_loader:
        images = images.cuda(non_blocking=True)
        target = target.cuda(non_blocking=True)
        output = model(images)  # bug: forward pass builds an autograd graph during validation (no torch.no_grad)
        loss = criterion(output, target)
        losses.append(loss)
        inter, union = intersection_and_union(output.argmax(1), target, num_classes)
        inter_sum = inter_sum + inter
        union_sum = union_sum + union
    miou = (inter_sum / (union_sum + 1e-10)).mean().item()
    return torch.stack(losses).mean().item(), miou
