import torch
import torch.nn as nn

from evaluation import evaluate


def main(train_loader, val_loader, device="cuda", epochs=30):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for epoch in range(epochs):  # expect: LC201
        for step, (x, y) in enumerate(train_loader):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
            loss.backward()
            opt.step()
            if step % 500 == 0:
                acc = evaluate(model, val_loader, device)
                print(f"epoch {epoch} step {step} val acc {acc:.3f}")


if __name__ == "__main__":
    main([], [])
