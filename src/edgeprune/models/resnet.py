"""ResNets with BasicBlocks: CIFAR ResNet-20/56 (16/32/64 channels) and ResNet-18 with a CIFAR stem."""

from __future__ import annotations

from torch import nn

from edgeprune.models._common import init_cnn_weights, scaled_channels
from edgeprune.models.registry import register


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1 conv-BN (option B) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem 3x3 conv (stride 1, no max pool) -> stages of BasicBlocks -> global average pool -> fc."""

    def __init__(self, blocks: list[int], widths: list[int], num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_planes = widths[0]
        for i, (n, width) in enumerate(zip(blocks, widths), start=1):
            stride = 1 if i == 1 else 2
            layers = []
            for j in range(n):
                layers.append(BasicBlock(in_planes, width, stride if j == 0 else 1))
                in_planes = width
            self.add_module(f"layer{i}", nn.Sequential(*layers))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        init_cnn_weights(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def _cifar_resnet(depth: int, num_classes: int, in_channels: int, width_mult: float) -> ResNet:
    n = (depth - 2) // 6
    return ResNet([n, n, n], scaled_channels([16, 32, 64], width_mult, f"resnet{depth}"), num_classes, in_channels)


@register("resnet20", "CIFAR ResNet-20 (3 stages 16/32/64, 3 BasicBlocks each, 1x1 conv shortcuts)")
def resnet20(num_classes: int, in_channels: int, image_size: int, *, width_mult: float = 1.0) -> nn.Module:
    """CIFAR ResNet-20 (0.27 M parameters); ``width_mult`` scales the stage widths (0.5: 8/16/32)."""
    return _cifar_resnet(20, num_classes, in_channels, width_mult)


@register("resnet56", "CIFAR ResNet-56 (3 stages 16/32/64, 9 BasicBlocks each, 1x1 conv shortcuts)")
def resnet56(num_classes: int, in_channels: int, image_size: int, *, width_mult: float = 1.0) -> nn.Module:
    """CIFAR ResNet-56 (0.85 M parameters)."""
    return _cifar_resnet(56, num_classes, in_channels, width_mult)


@register("resnet18", "ResNet-18 (BasicBlock [2,2,2,2], 64..512) with a CIFAR stem (3x3 conv, no max pool)")
def resnet18(num_classes: int, in_channels: int, image_size: int, *, width_mult: float = 1.0) -> nn.Module:
    """ResNet-18 for small images: 3x3 stride-1 stem and no max pool (11 M parameters)."""
    return ResNet([2, 2, 2, 2], scaled_channels([64, 128, 256, 512], width_mult, "resnet18"), num_classes, in_channels)
