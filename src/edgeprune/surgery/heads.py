"""Attention layers whose whole heads structured pruning can remove, and their bookkeeping after removal.

Two layouts are recognised (:func:`find`):

* fused: a module with an int ``num_heads`` and a ``qkv`` Linear of 3 x heads outputs (timm and zoo ViTs);
* split: a module with an int ``num_attention_heads`` (or ``num_heads``) and three Linears ``query``/``key``/
  ``value`` or ``q_proj``/``k_proj``/``v_proj`` of equal width, a multiple of the heads (HF ViT, DeiT, BEiT,
  DINOv2, Swin...).

Torch-Pruning removes the heads (``num_heads`` per projection, ``prune_num_heads=True``, head dims whole);
:func:`update` then writes the new head count and widths into the module's attributes (the head dim, hence
the softmax scale, is unchanged) and drops the removed heads' columns of per-head tables the module or its
parent owns (a BEiT or Swin ``relative_position_bias_table``, a Swin-v2 ``logit_scale``), which the traced
graph does not couple to the heads.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn

from edgeprune.models.mha import SplitMultiheadAttention, split_mha
from edgeprune.surgery.lazy import tp

_SPLIT = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"))
# per-head parameters kept beside the projections: name -> the dimension indexed by head
_PER_HEAD = {"relative_position_bias_table": -1, "logit_scale": 0}


def _heads(module: nn.Module, *attrs: str) -> int | None:
    for attr in attrs:
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return None


def projections(module: nn.Module) -> list[nn.Linear]:
    """The head-carrying projections of an attention module: ``[qkv]`` (fused) or ``[q, k, v]`` (split)."""
    qkv = getattr(module, "qkv", None)
    if isinstance(qkv, nn.Linear):
        return [qkv]
    for names in _SPLIT:
        layers = [getattr(module, n, None) for n in names]
        if all(isinstance(layer, nn.Linear) for layer in layers):
            return layers
    return []


def find(model: nn.Module) -> dict[str, tuple[str, int]]:
    """First projection Linear (``qkv`` or the query) -> (its attention module, number of heads)."""
    found = {}
    for name, module in model.named_modules():
        layers = projections(module)
        prefix = f"{name}." if name else ""
        if len(layers) == 1:
            heads = _heads(module, "num_heads")
            if heads and layers[0].out_features % (3 * heads) == 0:
                found[f"{prefix}qkv"] = (name, heads)
        elif layers:
            heads = _heads(module, "num_attention_heads", "num_heads")
            widths = {layer.out_features for layer in layers}
            if heads and len(widths) == 1 and widths.pop() % heads == 0:
                first = next(n for n, c in module.named_children() if c is layers[0])
                found[prefix + first] = (name, heads)
    return found


def head_tables(model: nn.Module, attention: str, heads: int) -> list[tuple[nn.Module, str, int]]:
    """(owner, parameter name, head dimension) of per-head tables of ``attention``: in its own subtree or
    a direct child of its parent (BEiT keeps the relative position bias on the layer)."""
    modules = dict(model.named_modules())
    parent = modules.get(attention.rpartition(".")[0]) if attention else None
    owners = list(modules[attention].modules())
    if parent is not None:
        owners += [c for c in parent.children() if c is not modules[attention]]
    found = []
    for owner in owners:
        for pname, dim in _PER_HEAD.items():
            p = owner._parameters.get(pname)
            if p is not None and p.dim() > 0 and p.shape[dim] == heads:
                found.append((owner, pname, dim))
    return found


def mha_groups(model: nn.Module) -> dict[nn.Module, int]:
    """``nn.MultiheadAttention`` -> its head count, as Torch-Pruning's channel groups. Its q/k/v width is
    its ``embed_dim``, the width of its input and output, so Torch-Pruning narrows it only with the residual
    stream (never when the stream is kept); grouped by head, every head then loses the same dims and
    ``embed_dim`` stays divisible by ``num_heads``."""
    return {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention) and m.num_heads > 1}


@contextmanager
def untraced(tables: list[tuple[nn.Module, str, int]]):
    """Per-head tables out of Torch-Pruning's traced graph while it is built: it would couple them to the
    q/k/v channels (a table is indexed by head, not by channel) and then refuse the whole group; they are
    cut by :func:`update` instead."""
    params = [owner._parameters[pname] for owner, pname, _ in tables]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def removed_heads(group, layer: nn.Linear, heads: int, fused: bool) -> list[int]:
    """Heads of ``layer``'s output (``heads`` of them; a fused qkv holds q, k and v) that a Torch-Pruning
    group removes (none: [])."""
    width = layer.out_features // (3 if fused else 1)
    for dep, idxs in group:
        if dep.target.module is layer and dep.handler == tp.prune_linear_out_channels:
            return sorted({(int(i) % width) // (width // heads) for i in idxs})
    return []


@torch.no_grad()
def update(module: nn.Module, layers: list[nn.Linear], heads: int, gone: list[int],
           tables: list[tuple[nn.Module, str, int]], original: int) -> None:
    """Write ``heads`` (the count left) and the new widths into ``module``; drop heads ``gone`` (of the
    ``original`` count) from the per-head ``tables``."""
    width = layers[0].out_features // (3 if len(layers) == 1 else 1)
    for attr in ("num_heads", "num_attention_heads"):
        if isinstance(getattr(module, attr, None), int):
            setattr(module, attr, heads)
    if isinstance(getattr(module, "head_dim", None), int):
        module.head_dim = width // heads
    for attr in ("attn_dim", "all_head_size"):  # timm >= 1.0 / HF: the width of all heads together
        if isinstance(getattr(module, attr, None), int):
            setattr(module, attr, width)
    keep = torch.tensor([h for h in range(original) if h not in set(gone)])
    for owner, pname, dim in tables:
        p = owner._parameters[pname]
        if p.shape[dim] == original:
            owner._parameters[pname] = nn.Parameter(p.index_select(dim % p.dim(), keep.to(p.device)).clone(),
                                                    requires_grad=p.requires_grad)


def split_attention(model: nn.Module, *, copied: bool = False) -> nn.Module:
    """``model`` with every ``nn.MultiheadAttention`` replaced by an equal
    :class:`~edgeprune.models.mha.SplitMultiheadAttention` (separate q/k/v projections, the same function), so it can
    lose whole heads while the residual stream keeps its width: in place, or on a deep copy with ``copied`` (the
    model itself when it has nothing to split). Loading reads the split back from the saved structure."""
    if not any(SplitMultiheadAttention.convertible(m) for m in model.modules()):
        return model
    target = copy.deepcopy(model) if copied else model
    split_mha(target)
    return target
