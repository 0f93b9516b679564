"""``nn.MultiheadAttention`` with separate q/k/v projections, so structured pruning can remove whole heads.

torch's ``nn.MultiheadAttention`` ties the width of its q/k/v projections to ``embed_dim``, the width of its
input and output (the residual stream of a ViT): it cannot lose a head without narrowing the stream.
:class:`SplitMultiheadAttention` computes the same function from ``q_proj``/``k_proj``/``v_proj`` Linears of
``num_heads * head_dim`` outputs and ``out_proj`` back to ``embed_dim``, the split layout
:mod:`edgeprune.surgery.heads` removes heads from (head dims stay whole, so the softmax scale stays right).
It takes ``nn.MultiheadAttention``'s call signature and returns ``(output, weights or None)``.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn


class SplitMultiheadAttention(nn.Module):
    """Multi-head attention with separate q/k/v Linears; built from an ``nn.MultiheadAttention`` by
    :meth:`from_mha` with equal outputs."""

    # what nn.TransformerEncoderLayer reads to choose its fused kernel (which needs the fused q/k/v): none here, so
    # it calls forward
    in_proj_weight = in_proj_bias = None
    _qkv_same_embed_dim = False

    def __init__(self, embed_dim: int, num_heads: int, *, bias: bool = True, dropout: float = 0.0,
                 batch_first: bool = False):
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @staticmethod
    def convertible(module: nn.Module) -> bool:
        """A self-contained ``nn.MultiheadAttention`` this class reproduces: q, k and v of ``embed_dim``
        inputs, no ``add_bias_kv``/``add_zero_attn``, more than one head."""
        return (isinstance(module, nn.MultiheadAttention) and module._qkv_same_embed_dim and module.bias_k is None
                and not module.add_zero_attn and module.num_heads > 1)

    @classmethod
    @torch.no_grad()
    def from_mha(cls, mha: nn.MultiheadAttention) -> SplitMultiheadAttention:
        bias = mha.in_proj_bias is not None
        new = cls(mha.embed_dim, mha.num_heads, bias=bias, dropout=mha.dropout, batch_first=mha.batch_first)
        new = new.to(device=mha.in_proj_weight.device, dtype=mha.in_proj_weight.dtype)
        for layer, w in zip((new.q_proj, new.k_proj, new.v_proj), mha.in_proj_weight.chunk(3)):
            layer.weight.copy_(w)
        if bias:
            for layer, b in zip((new.q_proj, new.k_proj, new.v_proj), mha.in_proj_bias.chunk(3)):
                layer.bias.copy_(b)
        new.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.out_proj.bias is not None:
            new.out_proj.bias.copy_(mha.out_proj.bias)
        new.train(mha.training)
        return new

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, H*D) -> (B, H, L, D)
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        if not self.batch_first or not batched:  # (L, B, E) -> (B, L, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        q, k, v = self._heads(self.q_proj(query)), self._heads(self.k_proj(key)), self._heads(self.v_proj(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu(1)
        for mask in (attn_mask, key_padding_mask):
            if mask is None:
                continue
            if mask is key_padding_mask:
                mask = mask[:, None, None, :]
            elif mask.dim() == 3:  # (B * heads, L, S)
                mask = mask.reshape(q.shape[0], -1, *mask.shape[-2:])
            scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        weights = scores.softmax(-1)
        out = F.dropout(weights, self.dropout, self.training) @ v
        out = self.out_proj(out.transpose(1, 2).reshape(out.shape[0], out.shape[2], -1))
        if not self.batch_first or not batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0)
        if not need_weights:
            return out, None
        return out, weights.mean(-3) if average_attn_weights else weights


@contextlib.contextmanager
def plain_attention():
    """torch's ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` as their plain operators: in eval mode
    without gradients they take fused kernels, which torch's FLOP counter does not count."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def split_mha(model: nn.Module, only: set[str] | None = None) -> list[str]:
    """Replace, in place, every convertible ``nn.MultiheadAttention`` of ``model`` (those named in ``only``,
    when given) by an equal :class:`SplitMultiheadAttention`; returns the replaced modules' names."""
    names = [n for n, m in model.named_modules()
             if n and SplitMultiheadAttention.convertible(m) and (only is None or n in only)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, SplitMultiheadAttention.from_mha(getattr(parent, child)))
    return names


__all__ = ["SplitMultiheadAttention", "plain_attention", "split_mha"]
