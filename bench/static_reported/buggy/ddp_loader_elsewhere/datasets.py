# After countless DDP reports of "training is not faster on N GPUs": the loader built in a data
# module has no DistributedSampler, so every rank iterates the whole dataset.
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def get_train_loader(root: str, batch_size: int):
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.ToTensor()])
    train_set = datasets.CIFAR10(root, train=True, download=False, transform=tf)
    return DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=4, pin_memory=True)  # expect: LC503
