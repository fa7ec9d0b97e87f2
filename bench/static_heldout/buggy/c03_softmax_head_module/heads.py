# Follows: yongjincho/cnn-text-classification-pytorch#1 (F.softmax(logits) followed by CrossEntropyLoss)
import torch
import torch.nn as nn


class ClassifierHead(nn.Module):
    def __init__(self, hidden_size, num_labels, dropout=0.1):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, features):
        x = self.dropout(features)
        x = torch.tanh(self.dense(x))
        x = self.out_proj(self.dropout(x))
        return torch.softmax(x, dim=-1)  # bug: head returns probabilities; loss is nn.CrossEntropyLoss
