"""A small Vision Transformer (timm layout: patch_embed, cls_token, pos_embed, blocks, norm, head).

Widths are read from tensor shapes at forward time, never cached, so structured pruning that physically
removes MLP hidden neurons (``fc1`` rows / ``fc2`` columns) or per-head channels needs no model surgery
beyond resizing the Linear layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.models._common import check_int
from edgeprune.models.registry import register


class PatchEmbed(nn.Module):
    """Non-overlapping patches via a Conv2d with kernel = stride = patch_size, flattened to tokens."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, dim]


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and scaled_dot_product_attention."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        b, n, _ = x.shape
        # head_dim comes from the qkv output width, so pruned per-head channels just work
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, -1)))


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout; the hidden width is whatever ``fc1`` currently has."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    @property
    def hidden_features(self) -> int:
        return self.fc1.out_features

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_drop=drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT classifier on the class token."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, patch_size: int = 4,
                 dim: int = 64, depth: int = 6, num_heads: int = 4, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, dim, patch_size)
        num_patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # patch embedding as a linear layer over flattened patches (as in timm / MAE)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self.pos_embed)
        return self.norm(self.blocks(x))

    def forward(self, x):
        return self.head(self.forward_features(x)[:, 0])


@register("vit", "small Vision Transformer (dim 64, depth 6, 4 heads, patch 4; timm layer names)")
def vit(num_classes: int, in_channels: int, image_size: int, *, dim: int = 64, depth: int = 6,
        num_heads: int = 4, mlp_ratio: float = 4.0, patch_size: int | None = None,
        dropout: float = 0.0) -> nn.Module:
    """ViT with ``dim``/``depth``/``num_heads``/``mlp_ratio``; ``patch_size`` defaults to 4 (2 below 16 px)."""
    if patch_size is None:
        patch_size = 4 if image_size >= 16 else 2
    check_int("patch_size", patch_size, 1, what="vit")
    check_int("dim", dim, 1, what="vit")
    check_int("depth", depth, 1, what="vit")
    check_int("num_heads", num_heads, 1, what="vit")
    if image_size % patch_size:
        raise ModelError(
            f"image_size {image_size} is not divisible by patch_size {patch_size} for vit; "
            f"allowed: an image_size that is a multiple of patch_size"
        )
    if dim % num_heads:
        raise ModelError(f"dim {dim} is not divisible by num_heads {num_heads} for vit; allowed: a divisor of dim")
    if not int(dim * float(mlp_ratio)) >= 1:
        raise ModelError(
            f"mlp_ratio must give at least one MLP neuron (dim * mlp_ratio >= 1) for vit, got {mlp_ratio!r}"
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ModelError(f"dropout must be in [0, 1) for vit, got {dropout!r}")
    return VisionTransformer(num_classes, in_channels, image_size, patch_size, dim, depth, num_heads,
                             float(mlp_ratio), float(dropout))
