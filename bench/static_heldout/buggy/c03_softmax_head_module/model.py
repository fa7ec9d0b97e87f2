import torch
import torch.nn as nn

from heads import ClassifierHead


class TextCNN(nn.Module):
    def __init__(self, vocab_size, embed_dim=128, num_filters=100, kernel_sizes=(3, 4, 5), num_labels=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(embed_dim, num_filters, k) for k in kernel_sizes])
        self.head = ClassifierHead(num_filters * len(kernel_sizes), num_labels)

    def forward(self, input_ids):
        x = self.embedding(input_ids).transpose(1, 2)
        pooled = [conv(x).relu().max(dim=-1).values for conv in self.convs]
        return self.head(torch.cat(pooled, dim=1))

