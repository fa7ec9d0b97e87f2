# Follows: cvg/glue-factory#89 (nn.Sigmoid inside the head, loss is BCEWithLogitsLoss -> sigmoid applied twice)
import torch.nn as nn
from torchvision.models import resnet18


class MultiLabelNet(nn.Module):
    def __init__(self, num_labels, pretrained_weights=None):
        super().__init__()
        backbone = resnet18(weights=pretrained_weights)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, num_labels), nn.Sigmoid())  # bug: sigmoid output is later passed to binary_cross_entropy_with_logits

    def forward(self, x):
        return self.head(self.backbone(x))
