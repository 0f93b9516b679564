"""A user's own model, registered nowhere: conv + BatchNorm, a residual block, a depthwise-separable
block and an MLP block with a skip (what every method of edgeprune must take as it is)."""

from __future__ import annotations

from torch import nn


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return (x + self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))).relu()


class MyNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block = Residual(width)
        self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.pointwise = nn.Conv2d(width, 2 * width, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * width)
        self.fc1 = nn.Linear(2 * width, 8 * width)
        self.fc2 = nn.Linear(8 * width, 2 * width)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = self.bn(self.pointwise(self.depthwise(x))).relu()
        x = x.mean((2, 3))
        x = x + self.fc2(nn.functional.gelu(self.fc1(x)))
        return self.head(x)


def build(num_classes: int = 10, in_channels: int = 1, width: int = 8) -> MyNet:
    return MyNet(num_classes, in_channels, width)
