"""Per-branch channel weights from one layer: SKNet's selective kernel (``x = torch.stack(paths, 1)``;
``a = fc_select(...).view(B, P, C, 1, 1).softmax(1)``; ``(x * a).sum(1)``).

The layer writes ``P x C`` channels, one weight per branch ``p`` and channel ``c`` at ``p * C + c``. torch-pruning
cannot map the view (its reshape mapping takes the channels as flattened ``(C, P)`` or gives up), so channel ``c``
of the branches was tied to channel ``c`` of the layer alone: every pruned copy of SKResNet failed its forward and
the default call was refused (2 % reachable). :func:`map_views` ties branch channel ``c`` to the layer's channels
``c, C + c, ..., (P - 1) * C + c``.
"""

from __future__ import annotations

import torch

from edgeprune.surgery.graph import ROOT_TYPES
from edgeprune.surgery.lazy import tp


class _PartsIndexMapping:
    """Indices across a view of ``parts x width`` channels as ``(parts, width)``: from the view's side, channel ``c``
    is ``c + p * width`` of the layer for every part ``p``; from the layer's side, channel ``k`` is ``k mod width``."""

    def __init__(self, parts: int, width: int, to_layer: bool):
        self.parts, self.width, self.to_layer = parts, width, to_layer

    def __call__(self, idxs):
        index = tp._helpers._HybridIndex
        if self.to_layer:
            return [index(i.idx + p * self.width, i.root_idx) for i in idxs for p in range(self.parts)]
        return list({index(i.idx % self.width, i.root_idx) for i in idxs})


def _producer(node):
    while node.type == tp.ops.OPTYPE.ELEMENTWISE and len(node.inputs) == 1:
        node = node.inputs[0]
    return node if isinstance(node.module, ROOT_TYPES) else None


def _stacked(node, parts: int, steps: int = 4) -> bool:
    """``node`` (a view's output) reaches, through one-input elementwise nodes (the softmax), a product with a stack of
    ``parts`` tensors along dimension 1."""
    while steps and len(node.outputs) == 1:
        node, steps = node.outputs[0], steps - 1
        if node.type != tp.ops.OPTYPE.ELEMENTWISE:
            return False
        if len(node.inputs) == 2 and "Mul" in type(node.grad_fn).__name__:
            return any(type(n.grad_fn).__name__.startswith("StackBackward") and getattr(n.grad_fn, "_saved_dim", None) == 1
                       and len(n.inputs) == parts for n in node.inputs)
    return False


def _output_shape(view) -> tuple:
    """The shape a view node produced, as its consumer saved it (a softmax's result, a product's other operand);
    () if not saved."""
    for name in ("_saved_result", "_saved_other"):
        try:
            saved = getattr(view.outputs[0].grad_fn, name, None)
        except RuntimeError:  # (freed)
            continue
        if isinstance(saved, torch.Tensor):
            return tuple(saved.shape)
    return ()


def _views(graph) -> dict:
    """View node -> (the layer's node, parts), found once on the unpruned graph."""
    if hasattr(graph, "_edgeprune_views"):
        return graph._edgeprune_views
    found = {}
    for node in graph.module2node.values():
        if node.type != tp.ops.OPTYPE.RESHAPE or len(node.inputs) != 1 or len(node.outputs) != 1:
            continue
        layer, shape = _producer(node.inputs[0]), _output_shape(node)
        sizes = tuple(getattr(node.grad_fn, "_saved_self_sym_sizes", ()) or ())
        if layer is None or len(sizes) < 2 or len(shape) != len(sizes) + 1 or shape[0] != sizes[0]:
            continue
        parts, width = shape[1], shape[2]
        if parts > 1 and parts * width == sizes[1] == graph.get_out_channels(layer.module) and tuple(shape[3:]) == sizes[2:] \
                and _stacked(node, parts):
            found[node] = (layer, parts)
    graph._edgeprune_views = found
    return found


def map_views(graph) -> None:
    """Set torch-pruning's index mappings across every per-branch view of ``graph`` at its current widths (after
    torch-pruning computed its own, which this replaces)."""
    for view, (layer, parts) in _views(graph).items():
        width = graph.get_out_channels(layer.module) // parts
        source, after = view.inputs[0], view.outputs[0]
        for dep in view.dependencies:
            if dep.target is source:
                dep.index_mapping[0] = _PartsIndexMapping(parts, width, to_layer=True)
            elif dep.target is after:
                dep.index_mapping[0] = None  # (one to one: the width axis goes on)
        for dep in source.dependencies:
            if dep.target is view:
                dep.index_mapping[0] = _PartsIndexMapping(parts, width, to_layer=False)
        for dep in after.dependencies:
            if dep.target is view:
                dep.index_mapping[0] = None


def roots_last(graph) -> None:
    """Let torch-pruning's group listing (``get_all_groups``, in ``module2node`` order) reach a layer viewed per
    branch from its branches: from the layer itself, the pruned channels would be chosen among all ``P x C`` of
    them, not the same ``c`` in every part."""
    layers = {layer.module for layer, _ in _views(graph).values()}
    for module in [m for m in graph.module2node if m in layers]:
        graph.module2node[module] = graph.module2node.pop(module)


__all__ = ["map_views", "roots_last"]
