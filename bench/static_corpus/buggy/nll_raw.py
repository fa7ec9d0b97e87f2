# ruff: noqa
import torch
import torch.nn as nn
import torch.nn.functional as F


class TextCNN(nn.Module):
    def __init__(self, vocab, n_cls):
        super().__init__()
        self.emb = nn.Embedding(vocab, 128)
        self.conv = nn.Conv1d(128, 100, 3)
        self.fc = nn.Linear(100, n_cls)

    def forward(self, x):
        h = self.conv(self.emb(x).transpose(1, 2)).relu().max(-1).values
        return self.fc(h)


torch.manual_seed(0)
model = TextCNN(30000, 4)
opt = torch.optim.Adam(model.parameters())
for tokens, labels in train_loader:
    opt.zero_grad()
    logits = model(tokens)
    loss = F.nll_loss(logits, labels)  # expect: LC303
    loss.backward()
    opt.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)  # expect: LC105
