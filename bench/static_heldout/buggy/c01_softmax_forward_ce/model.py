# Follows: Graylab/DL4Proteins-notebooks#13 (CNN returns F.softmax(logits) and is trained with CrossEntropyLoss)
import torch
import torch.nn as nn
import torch.nn.functional as F


class ContactCNN(nn.Module):
    """Small 1D CNN that classifies protein windows into secondary-structure classes."""

    def __init__(self, in_channels=21, hidden=64, num_classes=3, dropout=0.2):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, hidden, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel_size=5, padding=2)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        h = h.mean(dim=-1)
        logits = self.fc(self.dropout(h))
        output = F.softmax(logits, dim=1)  # bug: softmax in forward, output then fed to CrossEntropyLoss
        return output
