# ruff: noqa
import torch

model = Net()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
ckpt = torch.load("last.pt")  # expect: LC702  (no LC701: this script writes its own checkpoints)
model.load_state_dict(ckpt["model"], strict=False)  # expect: LC706
optimizer.load_state_dict(ckpt["optim"])
torch.manual_seed(ckpt["seed"])
device = torch.device("cuda")
model.to(device)
for x, y in loader:
    x.to(device)  # expect: LC604
    y = y.to(device)
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
torch.save(model, "model_full.pt")  # expect: LC705
