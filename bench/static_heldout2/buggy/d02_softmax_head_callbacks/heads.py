# Follows: gitabcworld/MatchingNetworks#5 (softmax applied, then F.cross_entropy applied on top)
import torch
import torch.nn as nn
import torch.nn.functional as F


class ClassificationHead(nn.Module):
    def __init__(self, in_dim, num_classes, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, feats):
        return F.softmax(self.fc(self.drop(feats)), dim=-1)  # bug: head returns probabilities; Trainer uses F.cross_entropy


class TextCNN(nn.Module):
    def __init__(self, vocab_size, num_classes, emb_dim=128, n_filters=100, kernel_sizes=(3, 4, 5)):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, n_filters, k) for k in kernel_sizes)
        self.head = ClassificationHead(n_filters * len(kernel_sizes), num_classes)

    def forward(self, tokens):
        x = self.emb(tokens).transpose(1, 2)
        pooled = [F.relu(conv(x)).amax(dim=-1) for conv in self.convs]
        return self.head(torch.cat(pooled, dim=-1))
