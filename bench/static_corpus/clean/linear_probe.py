# ruff: noqa
import torch
import torch.nn as nn
import torchvision

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
backbone = torchvision.models.resnet50(weights="IMAGENET1K_V2").to(device)
backbone.fc = nn.Identity()
backbone.eval()
for p in backbone.parameters():
    p.requires_grad = False
head = nn.Linear(2048, 100).to(device)
opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
crit = nn.CrossEntropyLoss()
for epoch in range(10):
    for images, labels in train_loader:
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            feats = backbone(images)
        loss = crit(head(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
