# ruff: noqa
import torch
from sklearn.preprocessing import StandardScaler
from transformers import AutoModelForSequenceClassification, AutoTokenizer

torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained("roberta-base")
model = AutoModelForSequenceClassification.from_pretrained("roberta-base", num_labels=3).to("cuda")
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
for epoch in range(3):  # expect: LC205
    for batch in train_loader:
        batch = {k: v.to("cuda") for k, v in batch.items()}
        outputs = model(**batch)
        outputs.loss.backward()
        optimizer.step()
        optimizer.zero_grad()

feat_scaler = StandardScaler()
X_train = feat_scaler.fit_transform(X_train)
X_val = feat_scaler.fit_transform(X_val)  # expect: LC508
