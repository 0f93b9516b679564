"""Layers that mix tokens, not channels: ``proj(x.transpose(1, 2)).transpose(1, 2)`` (MLP-Mixer's and ResMLP's token
MLPs, gMLP's spatial gate).

torch-pruning takes a transpose for an elementwise operation, so it couples the channels of the layer before it with
the features of the token layer after it, which are the tokens: MLP-Mixer's residual stream was kept whole (pruning it
cut the token MLP's output), and gMLP was refused (its gate's LayerNorm failed). :func:`cut` removes torch-pruning's
dependencies through a transpose whose layer after it reads another size than the layer before it writes: the
channels pass around the token layers, which act on the other axis. A layer whose output goes through such a
transpose keeps its output features (:func:`token_outputs`): they are the tokens.
"""

from __future__ import annotations

from torch import nn

from edgeprune.surgery.graph import ROOT_TYPES
from edgeprune.surgery.lazy import tp

_TRANSPOSES = ("TransposeBackward", "PermuteBackward")
_PRODUCTS = ("mm", "matmul", "einsum")  # (mm, addmm, bmm, baddbmm...: in lower case)


def cut(graph) -> None:
    """Remove the dependencies through every token-mixing transpose of ``graph`` (once per graph)."""
    if hasattr(graph, "_edgeprune_cut"):
        return
    graph._edgeprune_cut = cuts = set()
    for node in list(graph.module2node.values()):
        if not _is_transpose(node):
            continue
        written = {_size(n, out=True) for n in _walk(node, upstream=True)}
        read = {_size(n, out=False) for n in _walk(node, upstream=False)}
        if len(written) == 1 and read - written:
            cuts.add(node)
    for node in cuts:
        for near in (*node.inputs, *node.outputs):
            near.dependencies = [d for d in near.dependencies if d.target is not node]
        node.dependencies = []


def token_outputs(graph) -> set[nn.Module]:
    """The Conv/Linear layers of ``graph`` whose output goes through a cut transpose: their features are tokens."""
    cut(graph)
    return {n.module for t in graph._edgeprune_cut for n in _walk(t, upstream=True) if isinstance(n.module, ROOT_TYPES)}


def is_cut(graph, node) -> bool:
    """``node`` is a transpose :func:`cut` cut."""
    return node in getattr(graph, "_edgeprune_cut", ())


def _is_transpose(node) -> bool:
    return node.type == tp.ops.OPTYPE.ELEMENTWISE and any(t in type(node.grad_fn).__name__ for t in _TRANSPOSES)


def _walk(start, upstream: bool) -> list:
    """The nearest sized layers (Conv, Linear, norms) before (``upstream``) or after ``start``, through the operations
    :func:`_passes` allows; an empty list where another kind of operation comes first."""
    found, stack, seen = [], [(n, start) for n in (start.inputs if upstream else start.outputs)], {start}
    while stack:
        node, before = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if _size(node, out=True) is not None:
            found.append(node)
        elif _passes(node, before, upstream):
            stack.extend((n, node) for n in (node.inputs if upstream else node.outputs))
        else:
            return []
    return found


def _passes(node, before, upstream: bool) -> bool:
    """The walk of :func:`_walk` goes on through ``node`` (reached from ``before``): an elementwise operation other than
    a transpose or a product of two computed tensors, or a Linear's own reshape around its matrix product (a Linear
    on a transposed input: reshape, product with the weight, reshape), not another reshape (ResNeSt's radix
    split, Swin's patch merging: those move channels, which torch-pruning maps)."""
    if node.type == tp.ops.OPTYPE.RESHAPE:
        return not upstream and (_weight_product(before) or any(_weight_product(n) for n in node.outputs))
    return node.type == tp.ops.OPTYPE.ELEMENTWISE and not _is_transpose(node) and not _products_inputs(node)


def _weight_product(node) -> bool:
    """``node`` is a Linear's own matrix product (one factor is its weight)."""
    return _matrix_product(node) and not all(n.inputs for n in node.inputs)


def _products_inputs(node) -> bool:
    """``node`` multiplies two computed tensors as matrices (attention's ``q @ k^T``)."""
    return _matrix_product(node) and all(n.inputs for n in node.inputs)


def _matrix_product(node) -> bool:
    return any(p in type(node.grad_fn).__name__.lower() for p in _PRODUCTS)


def _size(node, out: bool) -> int | None:
    """The channels ``node``'s layer writes (``out``) or reads."""
    m = node.module
    if isinstance(m, nn.Linear):
        return m.out_features if out else m.in_features
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.out_channels if out else m.in_channels
    if isinstance(m, nn.LayerNorm):
        return m.normalized_shape[-1]
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return m.num_features
    return m.num_channels if isinstance(m, nn.GroupNorm) else None
