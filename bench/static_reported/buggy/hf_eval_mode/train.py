import torch
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from modeling import load_model


def main(train_set, epochs=3):
    torch.manual_seed(0)
    tokenizer, model = load_model("bert-base-uncased", num_labels=2)
    loader = DataLoader(train_set, batch_size=16, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    scheduler = get_linear_schedule_with_warmup(optimizer, 100, epochs * len(loader))
    for epoch in range(epochs):  # expect: LC205
        for batch in loader:
            enc = tokenizer(batch["text"], padding=True, truncation=True, return_tensors="pt")
            out = model(**enc, labels=batch["label"])
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()


if __name__ == "__main__":
    main(train_set=[])
