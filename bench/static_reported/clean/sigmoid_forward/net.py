# After many reports of a sigmoid head trained with BCEWithLogitsLoss (outputs squashed twice,
# loss cannot reach zero).
import torch
from torch import nn


class ToxicityHead(nn.Module):
    def __init__(self, encoder, hidden: int, n_labels: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(hidden, n_labels)

    def forward(self, input_ids, attention_mask):
        pooled = self.encoder(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.classifier(pooled)
