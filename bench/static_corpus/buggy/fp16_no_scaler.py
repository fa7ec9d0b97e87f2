# ruff: noqa
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = build_model().cuda()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=10000)
for step, (x, y) in enumerate(train_loader):
    optimizer.zero_grad()
    with torch.autocast(device_type="cuda", dtype=torch.float16):  # expect: LC401
        loss = F.cross_entropy(model(x.cuda()), y.cuda())
    loss.backward()
    scheduler.step()  # expect: LC104
    optimizer.step()
