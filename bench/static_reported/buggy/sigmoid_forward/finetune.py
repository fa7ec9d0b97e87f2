import torch
from transformers import AutoModel

from net import ToxicityHead


def main(train_loader, epochs=3):
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained("distilroberta-base")
    model = ToxicityHead(encoder, hidden=768, n_labels=6)
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    for _ in range(epochs):
        for batch in train_loader:
            opt.zero_grad()
            scores = model(batch["input_ids"], batch["attention_mask"])
            loss = loss_fn(scores, batch["labels"].float())  # expect: LC302
            loss.backward()
            opt.step()


if __name__ == "__main__":
    main(train_loader=[])
