"""CIFAR-style VGG with BatchNorm (configs A = VGG-11 and D = VGG-16) and a two-layer classifier."""

from __future__ import annotations

from torch import nn

from edgeprune.models._common import check_int, init_cnn_weights, scaled_channels
from edgeprune.models.registry import register

CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """3x3 conv-BN-ReLU stacks with max pools, global average pool, Linear-ReLU-(Dropout)-Linear."""

    def __init__(self, cfg: list[int | str], num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 classifier_width: int = 512, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for v in cfg:
            if v == "M":
                # small inputs (8 px digits) run out of pixels before the config runs out of pools
                if size > 1:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(channels, classifier_width), nn.ReLU(inplace=True)]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(classifier_width, num_classes))
        self.classifier = nn.Sequential(*head)
        init_cnn_weights(self)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def _vgg(cfg: str, num_classes, in_channels, image_size, classifier_width, dropout, width_mult) -> VGG:
    check_int("classifier_width", classifier_width, 1, what="vgg")
    convs = scaled_channels(CFGS[cfg], width_mult, "vgg")
    return VGG(convs, num_classes, in_channels, image_size, classifier_width, float(dropout))


@register("vgg11", "CIFAR VGG-11 with BatchNorm (config A), GAP + 512-512-classes head")
def vgg11(num_classes: int, in_channels: int, image_size: int, *, classifier_width: int = 512,
          dropout: float = 0.0, width_mult: float = 1.0) -> nn.Module:
    """VGG-11-BN for CIFAR-sized inputs; pools are skipped once the feature map is 1x1.

    ``width_mult`` scales every conv layer's channels (0.25: 16..128); the head keeps ``classifier_width``.
    """
    return _vgg("A", num_classes, in_channels, image_size, classifier_width, dropout, width_mult)


@register("vgg16", "CIFAR VGG-16 with BatchNorm (config D), GAP + 512-512-classes head")
def vgg16(num_classes: int, in_channels: int, image_size: int, *, classifier_width: int = 512,
          dropout: float = 0.0, width_mult: float = 1.0) -> nn.Module:
    """VGG-16-BN for CIFAR-sized inputs; pools are skipped once the feature map is 1x1 (``width_mult`` as vgg11)."""
    return _vgg("D", num_classes, in_channels, image_size, classifier_width, dropout, width_mult)
