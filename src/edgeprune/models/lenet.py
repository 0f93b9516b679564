"""LeNet family: LeNet-300-100 (fully connected) and the Caffe LeNet-5 (two convs, two FCs)."""

from __future__ import annotations

from torch import nn

from edgeprune.errors import ModelError
from edgeprune.models._common import check_int, dry_run_shape, init_cnn_weights
from edgeprune.models.registry import register


class LeNet300(nn.Module):
    """LeNet-300-100: flatten -> 300 -> 100 -> classes with ReLU."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, hidden=(300, 100)):
        super().__init__()
        widths = [in_channels * image_size * image_size, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class LeNet5(nn.Module):
    """Caffe LeNet-5: conv20(5x5) -> pool2 -> conv50(5x5) -> pool2 -> fc500 -> ReLU -> fc classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, padding: int = 0,
                 widths=(20, 50, 500)):
        super().__init__()
        c1, c2, hidden = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=padding),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=padding),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        try:
            flat = dry_run_shape(self.features, in_channels, image_size)[1]
        except RuntimeError:
            flat = 0
        if flat == 0:
            raise ModelError(
                f"image_size {image_size} is too small for lenet5 with padding {padding}; allowed: >= 4"
            )
        self.classifier = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))
        init_cnn_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x))


@register("lenet300", "LeNet-300-100 MLP (flatten -> 300 -> 100 -> classes)")
def lenet300(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """LeNet-300-100 for any input size (the input is flattened)."""
    return LeNet300(num_classes, in_channels, image_size)


@register("lenet5", "Caffe LeNet-5 (conv20-pool-conv50-pool-fc500-fc); 'same' padding below 16 px")
def lenet5(num_classes: int, in_channels: int, image_size: int, *, padding: int | None = None) -> nn.Module:
    """Caffe LeNet-5; ``padding`` defaults to 0 (800 features at 28 px) or 2 when valid convs would collapse."""
    if padding is None:
        # two valid 5x5 convs and two 2x2 pools need at least 16 px to leave one pixel
        padding = 0 if image_size >= 16 else 2
    check_int("padding", padding, 0, what="lenet5")
    return LeNet5(num_classes, in_channels, image_size, padding)
