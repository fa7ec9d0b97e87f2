# ruff: noqa
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2).cuda()
model.half()  # expect: LC402
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
for batch in train_loader:
    optimizer.zero_grad()
    out = model(**{k: v.cuda() for k, v in batch.items()})
    out.loss.backward()  # expect: LC905
    optimizer.step()
