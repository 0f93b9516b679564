"""A small U-Net for per-pixel logits on the CPU (``unet-tiny``): tests, benchmarks, MNIST-sized masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.models._common import check_int, init_cnn_weights
from edgeprune.models.registry import register


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net (Ronneberger et al.): ``depth`` 2x2 max-pool downsamplings doubling ``width``, bilinear upsampling
    concatenated with the skip of the same size, a 1x1 conv to ``num_classes``. Output [B, num_classes, H, W]."""

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, depth: int = 3):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])])
        self.down.extend(_double_conv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.up = nn.ModuleList(_double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        init_cnn_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)


@register("unet-tiny", "small U-Net (3 downsamplings, 16-128 channels) -> per-pixel logits [B, classes, H, W]")
def unet_tiny(num_classes: int, in_channels: int, image_size: int, *, width: int = 16, depth: int = 3) -> nn.Module:
    """``width`` channels at full resolution, doubled at each of ``depth`` downsamplings (image_size >= 2**depth)."""
    check_int("width", width, 1, what="unet-tiny")
    check_int("depth", depth, 1, what="unet-tiny")
    if image_size < 2**depth:
        raise ModelError(f"image_size {image_size} is too small for unet-tiny with depth {depth}; allowed: >= {2**depth}")
    return UNet(num_classes, in_channels, width, depth)
