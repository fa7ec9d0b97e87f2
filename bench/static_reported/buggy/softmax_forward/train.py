import torch
from torch.utils.data import DataLoader

from model import TextClassifier
from data import NewsDataset, collate

torch.manual_seed(0)
train_set = NewsDataset("train.csv")
train_loader = DataLoader(train_set, batch_size=64, shuffle=True, collate_fn=collate)
model = TextClassifier(vocab_size=50_000, dim=256, n_classes=4)
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(5):
    model.train()
    for tokens, offsets, labels in train_loader:
        optimizer.zero_grad()
        probs = model(tokens, offsets)
        loss = criterion(probs, labels)  # expect: LC301
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
