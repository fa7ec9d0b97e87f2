# Follows: wolny/pytorch-3dunet#53 ("Need to set the model to 'eval' mode when assessing the validation data")
import torch
import torch.nn as nn


def conv_block(cin, cout):
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, padding=1), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
        nn.Conv3d(cout, cout, 3, padding=1), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
    )


class TinyUNet3D(nn.Module):
    def __init__(self, in_ch=1, out_ch=2, f=16):
        super().__init__()
        self.enc1 = conv_block(in_ch, f)
        self.enc2 = conv_block(f, 2 * f)
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ConvTranspose3d(2 * f, f, 2, stride=2)
        self.dec1 = conv_block(2 * f, f)
        self.drop = nn.Dropout3d(0.1)
        self.head = nn.Conv3d(f, out_ch, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.drop(self.enc2(self.pool(e1)))
        d1 = self.dec1(torch.cat([self.up(e2), e1], dim=1))
        return self.head(d1)
