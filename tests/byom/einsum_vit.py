"""A user's own ViT, written by hand the way most people write one: attention whose head count sits in an
attribute named ``h`` (not ``num_heads``), q/k/v reshaped by it and multiplied with ``einsum``. Structured
pruning cannot see that reshape, so it must keep this attention whole and prune the MLPs around it."""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.h = n_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
        a = torch.einsum("bhqd,bhkd->bhqk", q, k).mul(c // self.h and (c // self.h) ** -0.5).softmax(-1)
        return self.proj(torch.einsum("bhqk,bhkd->bhqd", a, v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, n_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EinsumViT(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 8, patch: int = 2,
                 dim: int = 32, depth: int = 2, n_heads: int = 4):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, (image_size // patch) ** 2, dim))
        self.blocks = nn.Sequential(*[Block(dim, n_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(x)).mean(1))


def build(num_classes: int = 10, in_channels: int = 1, image_size: int = 8, dim: int = 32, depth: int = 2,
          n_heads: int = 4) -> EinsumViT:
    return EinsumViT(num_classes, in_channels, image_size, dim=dim, depth=depth, n_heads=n_heads)
