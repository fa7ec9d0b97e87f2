# Follows: rawmarshmellows/pytorch-unet-resnet-50-encoder#2 ("maybe you forget add 'import torch.nn as nn'")
import torch
import torchvision


class ConvBlock(nn.Module):  # bug: nn is used but torch.nn is never imported as nn (NameError)
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class UpBlock(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.block = nn.Sequential(ConvBlock(in_channels // 2 + skip_channels, out_channels), ConvBlock(out_channels, out_channels))

    def forward(self, x, skip):
        return self.block(torch.cat([self.up(x), skip], dim=1))


class UNetResNet50(nn.Module):
    def __init__(self, n_classes=2):
        super().__init__()
        r = torchvision.models.resnet50(weights="IMAGENET1K_V1")
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu)
        self.pool = r.maxpool
        self.enc = nn.ModuleList([r.layer1, r.layer2, r.layer3, r.layer4])
        self.up = nn.ModuleList([UpBlock(2048, 1024, 1024), UpBlock(1024, 512, 512), UpBlock(512, 256, 256), UpBlock(256, 64, 128)])
        self.out = nn.Conv2d(128, n_classes, 1)

    def forward(self, x):
        skips = [self.stem(x)]
        h = self.pool(skips[0])
        for layer in self.enc:
            h = layer(h)
            skips.append(h)
        h = skips.pop()
        for up, skip in zip(self.up, reversed(skips)):
            h = up(h, skip)
        return self.out(h)
