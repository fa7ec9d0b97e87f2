# After "TypeError: __init__() got an unexpected keyword argument" reports raised only after the
# dataset was built: misspelt DataLoader / optimizer keywords.
import torch
from torch.utils.data import DataLoader, TensorDataset


def main():
    torch.manual_seed(0)
    ds = TensorDataset(torch.randn(10_000, 20), torch.randint(0, 2, (10_000,)))
    loader = DataLoader(ds, batch_size=256, shuffle=True, num_workers=4)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.95))
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


if __name__ == "__main__":
    main()
