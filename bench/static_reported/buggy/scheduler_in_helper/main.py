import torch
import torchvision

from engine import train_one_epoch


def main(loader, epochs=90):
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[30, 60, 80], gamma=0.1)
    for epoch in range(epochs):
        train_one_epoch(model, loader, optimizer, scheduler, torch.nn.CrossEntropyLoss())


if __name__ == "__main__":
    main([])
