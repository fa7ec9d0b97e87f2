# ruff: noqa
import torch

model = build_model()
model.load_state_dict(torch.load("pretrained.pt", map_location="cpu", weights_only=True))
model.eval()  # expect: LC202
torch.manual_seed(0)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
for epoch in range(3):
    for x, y in loader:
        for_opt = opt
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
        loss.backward()  # expect: LC305
        opt.step()
