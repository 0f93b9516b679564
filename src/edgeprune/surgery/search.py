"""torch-pruning's dependency search, bounded and faster.

:func:`bounded_groups` wraps every call into torch-pruning's group search (our plans and ``BasePruner``):
a search that grows without bound or whose one group runs past ``SEARCH_SECONDS`` of CPU time is refused in one
line naming the layer it started from (structured pruning then keeps that layer's group whole), and the
graph's index mappings are recomputed only when a width changed, with a concat mapping that does not test
membership in a list (the two together: timm's DenseNet-264 pruned structurally in 28 s instead of 124 s).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import time

from torch import nn

from edgeprune.errors import ModelError
from edgeprune.surgery import branch_weights, token_mixing
from edgeprune.surgery.graph import ROOT_TYPES, update_concat_index_mapping
from edgeprune.surgery.lazy import tp

SEARCH_SECONDS = 30.0  # CPU time for one group's search


def _state(graph) -> tuple:
    """What torch-pruning's index mappings are computed from: parameter shapes and concat/split sizes. Asked before
    every group's search (hundreds of times per pruned copy of a DenseNet), so the modules that hold them are listed
    once per graph: pruning replaces parameters, not modules."""
    if not hasattr(graph, "_edgeprune_holders"):
        graph._edgeprune_holders = (
            [m for m in graph.model.modules() if m._parameters],
            [n.module for n in graph.module2node.values()
             if hasattr(n.module, "concat_sizes") or hasattr(n.module, "split_sizes")])
    holders, ops = graph._edgeprune_holders
    shapes = tuple(p.shape for m in holders for p in m._parameters.values() if p is not None)
    sizes = tuple(tuple(getattr(op, "concat_sizes", None) or getattr(op, "split_sizes", None) or ()) for op in ops)
    return shapes, sizes


@contextlib.contextmanager
def _index_mapping_once():
    """torch-pruning recomputes every concat/split/reshape index mapping of the whole graph each time it
    builds one group (``get_pruning_group``), so listing the groups costs groups x graph: on DenseNet-264's
    hundreds of concats that is two minutes of a structured-pruning call. The mappings depend only on the
    widths, so recompute them when a width changed since the last time (a pruning step), else reuse them.
    GLU MLPs' splits are mapped too (:func:`glu_parts`), and per-branch views (:mod:`~edgeprune.surgery.branch_weights`).
    A flatten mapping builds its index objects faster (:func:`_flatten`)."""
    module = tp.dependency.index_mapping
    original, concat, split = (module.update_index_mapping, module.update_concat_index_mapping,
                               module.update_split_index_mapping)
    flatten = module._FlattenIndexMapping.__call__

    def update(graph):
        if not hasattr(graph, "_edgeprune_glu"):
            token_mixing.cut(graph)
            graph._edgeprune_glu = _glu_splits(graph)
        if getattr(graph, "_edgeprune_widths", None) != _state(graph):
            with _widths_cached(graph):
                original(graph)
            branch_weights.map_views(graph)
            graph._edgeprune_widths = _state(graph)  # after: the first update fills concat/split sizes in

    def update_split(graph, node):
        if node in graph._edgeprune_glu:
            _map_split(node)
        else:
            split(graph, node)

    module.update_index_mapping, module.update_concat_index_mapping = update, update_concat_index_mapping
    module.update_split_index_mapping, module._FlattenIndexMapping.__call__ = update_split, _flatten
    try:
        yield
    finally:
        module.update_index_mapping, module.update_concat_index_mapping = original, concat
        module.update_split_index_mapping, module._FlattenIndexMapping.__call__ = split, flatten


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector paused: a search through reshapes builds millions of index tuples (24 million per
    pruned copy of SAM2-Hiera-Tiny), and each collection walks every one still alive. The search makes no cycles."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _flatten(self, idxs: list) -> list:
    """torch-pruning's ``_FlattenIndexMapping.__call__`` (a flatten or reshape: index ``i`` stands for ``stride``
    indices after it), its index tuples built without a Python call each: through SAM2-Hiera's attention reshapes one
    pruned copy built 24 million of them, 95 of its 110 s under the profiler."""
    hybrid, new, stride = tp._helpers._HybridIndex, tuple.__new__, self._stride
    if self.reverse:
        return list(set([new(hybrid, (i.idx // stride, i.root_idx)) for i in idxs]))  # (torch-pruning's order)
    return [new(hybrid, (k, i.root_idx)) for i in idxs for k in range(i.idx * stride, (i.idx + 1) * stride)]


@contextlib.contextmanager
def _widths_cached(graph):
    """Inside, each node's width is asked of torch-pruning once. Its reshape and expand mappings infer widths by
    walking the graph from every reshape, up to 500 steps each, and ask a width at every step: on torchvision's
    Swin-T 1.3 million times per pruned copy, 14 of its 24 s. No width changes while the mappings are computed."""
    cached = {}
    for name in ("get_out_channels", "get_in_channels"):
        ask, answers = getattr(graph, name), {}

        def cached_width(node, ask=ask, answers=answers):
            if node not in answers:
                answers[node] = ask(node)
            return answers[node]
        cached[name] = cached_width
    vars(graph).update(cached)  # (shadows the methods on this graph alone)
    try:
        yield
    finally:
        for name in cached:
            del vars(graph)[name]


def glu_parts(graph) -> dict[nn.Module, int]:
    """The Linear layers of ``graph`` whose output a GLU MLP cuts in two and gates (``a, b = fc1(x).chunk(2, -1);
    act(a) * b``) -> 2: their channels pair up (``j`` with ``j + half``), as a grouped layer's do. Known once
    torch-pruning's index mappings were computed under :func:`bounded_groups`."""
    return {linear: len(node.outputs) for node, linear in getattr(graph, "_edgeprune_glu", {}).items()}


def _glu_splits(graph) -> dict:
    """The split/chunk nodes of GLU MLPs (see :func:`glu_parts`), their sizes filled in. torch-pruning
    maps a split only along dimension 1 (a conv's channels, or a 2-d Linear output's features), and turns every split's
    mapping off in a model with a 3-d parameter (a ViT's position embedding) upstream: the GLU MLPs of EVA-02 and other
    ViTs could not lose hidden neurons. Found once, on the unpruned graph (the split's recorded input shape is the
    unpruned one). Split node -> the Linear whose output it cuts (directly or after its activation)."""
    found = {}
    for node in graph.module2node.values():
        if node.type != tp.ops.OPTYPE.SPLIT or len(node.inputs) != 1 or len(node.outputs) != 2:
            continue
        grad_fn, producer = node.grad_fn, node.inputs[0]
        while producer.type == tp.ops.OPTYPE.ELEMENTWISE and len(producer.inputs) == 1:  # (the activation)
            producer = producer.inputs[0]
        producer = producer.module
        shape = tuple(getattr(grad_fn, "_saved_self_sym_sizes", ()) or ())
        dim = getattr(grad_fn, "_saved_dim", None)
        if len(shape) < 3 or dim is None or not isinstance(producer, nn.Linear) or shape[-1] != producer.out_features:
            continue
        dim = dim - 2 ** 64 if dim >= 2 ** 63 else dim  # (a negative dimension is saved as an unsigned integer)
        if dim % len(shape) != len(shape) - 1 or shape[-1] % 2 or not _gated(graph, node):
            continue
        node.module.split_sizes = [shape[-1] // 2] * 2  # (the offsets: :func:`_map_split`)
        found[node] = producer
    return found


def _gated(graph, split) -> bool:
    """Both outputs of ``split`` meet in one product, directly or through operations that keep each channel where it
    is: elementwise ones (the activation), a LayerNorm, layers mixing tokens (gMLP's spatial gate,
    :mod:`~edgeprune.surgery.token_mixing`)."""
    passing = (tp.ops.OPTYPE.ELEMENTWISE, tp.ops.OPTYPE.LN, tp.ops.OPTYPE.RESHAPE)

    def reached(node, steps=12):
        found, tokens = {node}, False  # tokens: between two cut transposes, where a Linear mixes tokens
        while steps and len(node.outputs) == 1 and (node.type in passing or tokens and node.type == tp.ops.OPTYPE.LINEAR):
            tokens ^= token_mixing.is_cut(graph, node)
            node, steps = node.outputs[0], steps - 1
            found.add(node)
        return found
    first, second = (reached(out) for out in split.outputs)
    return any(n.type == tp.ops.OPTYPE.ELEMENTWISE and "Mul" in type(n.grad_fn).__name__ for n in first & second)


def _map_split(node) -> None:
    """torch-pruning 1.6's ``update_split_index_mapping`` without its dimension test, for a :func:`_glu_splits`
    node (its sizes follow the pruning: ``SplitPruner`` updates them)."""
    im = tp.dependency.index_mapping
    offsets = [0, *itertools.accumulate(node.module.split_sizes)]
    node.module.offsets = offsets
    for reverse in (False, True):
        addressed = set()
        for i, out_node in enumerate(node.outputs):
            deps, target = (node.dependencies, out_node) if not reverse else (out_node.dependencies, node)
            for dep in deps:
                if id(dep) in addressed or dep.target != target:
                    continue
                dep.index_mapping[0] = im._SplitIndexMapping(offset=offsets[i: i + 2], reverse=reverse)
                addressed.add(id(dep))
                break


class Unbounded(Exception):
    """torch-pruning's dependency search grew a group without bound or ran out of time (see :func:`bounded_groups`)."""


class Runaway(Unbounded):
    """One group grew without bound (not the time limit): the search from other layers may still end."""


class SearchStopped(ModelError):
    """The one-line refusal of a stopped search; ``module``: the layer the stopped search started from (None: not
    known), so that structured pruning can keep its group whole and prune the rest
    (:func:`edgeprune.surgery.ratios.prune_channels`)."""

    def __init__(self, message: str, cause: str, module: str | None):
        self.cause, self.module = cause, module
        self.why = f"torch-pruning's dependency search from them was stopped ({cause})"
        super().__init__(message)


@contextlib.contextmanager
def bounded_groups(model: nn.Module, graph, what: str, per_node: int = 8, per_width: int = 64,
                   seconds: float = SEARCH_SECONDS):
    """Stop torch-pruning's dependency search when a group grows beyond ``per_node`` items per graph node: on
    split/concat cycles (FocalNet's modulation) it keeps adding the same layers with other index lists and
    does not return for minutes; or when one item's index list grows beyond ``per_width`` times the widest
    Conv/Linear dimension (a Linear after a flatten reads C*H*W inputs: that is the widest): through
    EfficientFormer-v2's attention reshapes its flatten mappings multiply the list at every step (millions of
    indices, minutes); or when one group's search used more than ``seconds`` of CPU time (MobileNetV5-300M's
    flatten mappings: 47 million index objects, 70 s, before a list outgrows the bound). The clock starts again
    with each group: a plan of many groups on a large model (timm's ResNeSt-26d: dozens of searches of seconds each) is
    slow, not unbounded.
    Such a model is refused with a one-line ModelError naming ``what`` failed. ``graph`` None
    (a pruner that traces the model itself): the node count is taken as twice the number of modules.

    Inside, the graph's index mappings are also recomputed only when a width changed (see
    :func:`_index_mapping_once`)."""
    nodes = len(graph.module2node) if graph is not None else 2 * sum(1 for _ in model.modules())
    limit = per_node * nodes + 100
    widest = max([max(m.weight.shape[:2]) for m in model.modules()
                  if isinstance(m, ROOT_TYPES) and getattr(m, "weight", None) is not None] or [1])
    indices = per_width * int(widest)
    original, original_search = tp.dependency.group.Group.add_dep, tp.DependencyGraph.get_pruning_group
    stop, root = [time.process_time() + seconds], [None]

    def search(self, module, *args, **kwargs):
        stop[0], root[0] = time.process_time() + seconds, getattr(self, "_module2name", {}).get(module)
        with _collector_paused():
            return original_search(self, module, *args, **kwargs)

    def add_dep(self, dep, idxs):
        if time.process_time() > stop[0]:
            raise Unbounded(f"it ran past {seconds:g} s of CPU time")
        if len(self._group) >= limit:
            raise Runaway(f"a group grew past {limit} layer entries: split/concat couplings it expands without bound")
        if len(idxs) > indices:
            raise Runaway(f"an index list grew past {indices} entries: reshapes it maps without bound")
        original(self, dep, idxs)

    tp.dependency.group.Group.add_dep, tp.DependencyGraph.get_pruning_group = add_dep, search
    try:
        with _index_mapping_once():
            yield
    except Unbounded as exc:
        raise SearchStopped(f"torch-pruning's dependency search on {type(model).__name__} was stopped ({exc}); "
                            f"{what} cannot prune this model", str(exc), root[0]) from None
    finally:
        tp.dependency.group.Group.add_dep, tp.DependencyGraph.get_pruning_group = original, original_search
