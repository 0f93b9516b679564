"""Batched tensor transforms: random crop with zero padding, horizontal flip, normalisation statistics.

Everything works on whole batches ``[B, C, H, W]`` (uint8 or float) and draws its randomness from an
explicit :class:`torch.Generator`, so a seeded run sees the same augmentations every time.
"""

from __future__ import annotations

import torch

_STATS_CHUNK = 4096  # images per chunk when computing channel statistics (bounds the float copy)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad every image by ``padding`` zero pixels and crop it back to its size at a random offset.

    Each image in the batch gets its own offset; the result has the dtype and shape of ``x``.
    """
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    rows = (top[:, None] + torch.arange(h))[:, None, :, None]  # [B, 1, H, 1]
    cols = (left[:, None] + torch.arange(w))[:, None, None, :]  # [B, 1, 1, W]
    batch = torch.arange(b)[:, None, None, None]
    chans = torch.arange(c)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], generator=generator) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; float input is taken to be in [0, 1] already."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``images`` [N, C, H, W] in the [0, 1] scale.

    Accumulates in float64 over chunks so large uint8 sets never need a full float copy. A channel
    with zero variance gets std 1.0 (normalising by it would divide by zero).
    """
    n, c = images.shape[0], images.shape[1]
    if n == 0:
        return (0.0,) * c, (1.0,) * c
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, n, _STATS_CHUNK):
        chunk = to_unit_float(images[start : start + _STATS_CHUNK]).to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += chunk.square().sum(dim=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    var = (total_sq / count - mean.square()).clamp_min(0.0)
    std = var.sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())
