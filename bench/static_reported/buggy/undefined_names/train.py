import torch
import torch.nn.functional as F

from model import ConvNet


def run(loader, epochs=10):
    torch.manual_seed(0)
    model = ConvNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    torhc.save(model.state_dict(), "convnet.pt")  # expect: LC001


if __name__ == "__main__":
    run([])
