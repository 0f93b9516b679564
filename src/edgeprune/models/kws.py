"""A 1-D convolutional classifier for keyword spotting and time series (``kws-cnn1d``): input [B, C, L].

``in_channels`` are the features per step (1 for a raw waveform, 40 for MFCCs), ``image_size`` the sequence
length L (the zoo's size argument). Stacks of Conv1d-BN-ReLU halve the length block after block, a global
average over time feeds the linear classifier.
"""

from __future__ import annotations

from torch import nn

from edgeprune.errors import ModelError
from edgeprune.models._common import check_int
from edgeprune.models.registry import register


class ConvNet1d(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, width: int = 32, blocks: int = 4, kernel_size: int = 5):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(blocks):
            c_out = width * 2 ** (i // 2)  # width, width, 2 width, 2 width, 4 width...
            layers += [nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False), nn.BatchNorm1d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool1d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.classifier = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.classifier(self.features(x))


@register("kws-cnn1d", "1-D CNN for keyword spotting / time series, input [B, C, L] (image_size = L), 4 Conv1d blocks")
def kws_cnn1d(num_classes: int, in_channels: int, image_size: int, *, width: int = 32, blocks: int = 4,
              kernel_size: int = 5) -> nn.Module:
    """``blocks`` Conv1d blocks (each halves the length: L >= 2**blocks), widths ``width`` doubling every two."""
    check_int("width", width, 1, what="kws-cnn1d")
    check_int("blocks", blocks, 1, what="kws-cnn1d")
    check_int("kernel_size", kernel_size, 1, what="kws-cnn1d")
    if image_size < 2**blocks:
        raise ModelError(f"sequence length (image_size) {image_size} is too short for kws-cnn1d with {blocks} blocks; "
                         f"allowed: >= {2**blocks}")
    return ConvNet1d(num_classes, in_channels, width, blocks, kernel_size)
