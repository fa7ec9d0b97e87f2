# Follows: udacity/deep-learning-v2-pytorch#142 ("nn was not defined"; fixed by adding import torch.nn as nn)
import torch
import torch.nn.functional as F  # bug: `nn` is used below but `import torch.nn as nn` is missing (NameError)


class CharRNN(nn.Module):  # bug: NameError: name 'nn' is not defined
    def __init__(self, n_chars, n_hidden=256, n_layers=2, drop_prob=0.5):
        super().__init__()
        self.n_layers, self.n_hidden = n_layers, n_hidden
        self.lstm = nn.LSTM(n_chars, n_hidden, n_layers, dropout=drop_prob, batch_first=True)
        self.dropout = nn.Dropout(drop_prob)
        self.fc = nn.Linear(n_hidden, n_chars)

    def forward(self, x, hidden):
        out, hidden = self.lstm(x, hidden)
        out = self.dropout(out).contiguous().view(-1, self.n_hidden)
        return self.fc(out), hidden

    def init_hidden(self, batch_size, device):
        shape = (self.n_layers, batch_size, self.n_hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)


def one_hot(arr, n_labels):
    return F.one_hot(arr, n_labels).float()
