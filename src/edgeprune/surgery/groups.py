"""The coupled channel groups of a model: which Conv/Linear layers' output channels are tied together.

Removing output channels of one layer also removes them from everything coupled to that layer: its
BatchNorm, the input channels of its consumers (next conv, the Linear after a global pool) and, in
residual networks, every other layer feeding the same residual sum. :func:`coupled_groups` lists those sets
(one per residual stream, one per plain layer) without changing the model; :func:`traced` is the one way the
structural methods trace a model: its graph and groups, under the bounded search, or a one-line ModelError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from edgeprune.errors import EdgepruneError, ModelError
from edgeprune.surgery.graph import ROOT_TYPES, build_graph, group_of, named, output_modules, sums_into_residual, widens_input
from edgeprune.surgery.search import Runaway, Unbounded, bounded_groups, glu_parts
from edgeprune.surgery.token_mixing import token_outputs

# what torch-pruning raises on a coupling it cannot follow (ZeroDivisionError: an index mapping of a
# zero-size head dim, as in GCViT's global query)
TP_ERRORS = (RuntimeError, IndexError, ValueError, KeyError, TypeError, AttributeError, AssertionError,
             ZeroDivisionError)


@dataclass
class ChannelGroup:
    """Layers whose output channels are removed together (torch-pruning's dependency group).

    ``members`` produce the coupled channels (a plain conv alone; in a ResNet stage the stem or
    downsample conv and every block's last conv), ``consumers`` read them (their input channels shrink),
    ``norms`` are the normalisation layers on the way. ``protected`` groups feed the model's output
    (removing their channels would change the output shape) and are never pruned.
    """

    members: list[str]
    channels: int
    consumers: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    protected: bool = False
    residual: bool = False  # the channels are summed with another producer's (a residual stream)
    failed: str = ""  # torch-pruning failed to find the group (the exception, one line; protected then)
    channel_groups: int = 1  # a grouped conv or GroupNorm on the way splits the channels into this many equal parts


# searches stopped at their time limit a model's groups may have (each kept whole; iFormer-S has 2, each 30 s)
SLOW_GROUPS = 3


def coupled_groups(model: nn.Module, example_input: torch.Tensor, *, graph=None,
                   failing: tuple[type[Exception], ...] = ()) -> list[ChannelGroup]:
    """Every set of Conv/Linear layers whose output channels are tied, in module order.

    A layer whose output channels are coupled with nothing forms a group of one. Nothing is modified. A layer
    whose group torch-pruning fails to find with one of the ``failing`` exceptions (GCViT's expand of a zero
    head dim) forms a protected group of one (never pruned). A search stopped at its time limit costs that time:
    the layers of the same name in modules of the same class (the other blocks' ``attn.qkv``) are then kept whole
    without a search, and past :data:`SLOW_GROUPS` such stops the last is raised.
    """
    slow, slow_kinds = 0, {}
    graph = graph or build_graph(model, example_input)
    outputs = output_modules(model, graph=graph)
    tokens = token_outputs(graph)  # (cuts the graph's token-mixing transposes before any search)
    seen: set[str] = set()
    groups = []
    modules = dict(model.named_modules())
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    # output layers last, and not searched from: they are protected whatever they couple with (the layers they
    # couple with find them), and from a detector's heads the search crosses reshapes and concatenations of
    # anchors (SSD's: minutes)
    roots = sorted(((n, m) for n, m in model.named_modules() if n), key=lambda item: item[0] in outputs)
    for name, module in roots:
        if name in seen or not isinstance(module, ROOT_TYPES) or module not in graph.module2node:
            continue
        channels = graph.get_out_channels(module)
        if not channels:
            continue
        if name in outputs:
            groups.append(ChannelGroup(members=[name], channels=int(channels), protected=True))
            continue
        kind = _kind(modules, name)
        if kind in slow_kinds:  # its twin's search ran out of time: so would this one
            groups.append(ChannelGroup(members=[name], channels=int(channels), protected=True, failed=slow_kinds[kind]))
            continue
        try:
            group = group_of(graph, module, range(channels))
        except failing as exc:
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
            if isinstance(exc, Unbounded) and not isinstance(exc, Runaway):
                slow += 1
                if slow > SLOW_GROUPS:
                    raise
                slow_kinds[kind] = f"as {name}, {why}"
            groups.append(ChannelGroup(members=[name], channels=int(channels), protected=True, failed=why))
            continue
        members, consumers, norms, residual, split = [], [], [], False, 1
        for dep, _ in group:
            residual = residual or sums_into_residual(dep.target.module)
            split = max(split, _channel_groups(graph, dep))
            target = named(graph, dep.target.module)
            if target is None:
                continue
            out_side = graph.is_out_channel_pruning_fn(dep.handler)
            if out_side and isinstance(dep.target.module, ROOT_TYPES):
                if target not in members:
                    members.append(target)
            elif out_side:
                if target not in norms:
                    norms.append(target)
            elif target not in consumers:
                consumers.append(target)
        seen.update(members)
        groups.append(
            ChannelGroup(
                members=sorted(members, key=order.get),
                channels=int(channels),
                consumers=sorted(consumers, key=order.get),
                norms=sorted(norms, key=order.get),
                protected=any(m in outputs or widens_input(graph, modules[m]) or modules[m] in tokens for m in members),
                residual=residual,
                channel_groups=split,
            )
        )
    return sorted(groups, key=lambda g: order.get(g.members[0], -1) if g.members else -1)


def _kind(modules: dict[str, nn.Module], name: str) -> tuple:
    """A layer's place in a repeated block: its parent's class and its own attribute name."""
    parent, _, leaf = name.rpartition(".")
    return type(modules.get(parent)), leaf


def _channel_groups(graph, dep) -> int:
    """The equal parts a grouped conv (not a depthwise one), a GroupNorm or a GLU MLP's gate (:func:`glu_parts`) splits
    the channels ``dep`` prunes into, as torch-pruning's BasePruner counts them: it removes the same channels from every
    part."""
    module = dep.target.module
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups == module.out_channels:
        return 1
    if module in glu_parts(graph) and graph.is_out_channel_pruning_fn(dep.handler):
        return glu_parts(graph)[module]
    pruner = graph.get_pruner_of_module(module)
    side = "out" if graph.is_out_channel_pruning_fn(dep.handler) else "in"
    count = getattr(pruner, f"get_{side}_channel_groups", lambda _: 1)(module) if pruner is not None else 1
    return count if isinstance(count, int) and count > 1 else 1


def traced(model: nn.Module, example: torch.Tensor, what: str,
           failing: tuple[type[Exception], ...] = ()) -> tuple[object, list[ChannelGroup]]:
    """torch-pruning's graph of ``model`` and its coupled groups, found under :func:`bounded_groups`, or a one-line
    ModelError naming ``what`` (the method) when torch-pruning fails on the model. ``failing``: see
    :func:`coupled_groups`."""
    graph = build_graph(model, example)
    try:
        with bounded_groups(model, graph, what):
            return graph, coupled_groups(model, example, graph=graph, failing=failing)
    except EdgepruneError:
        raise
    except Exception as exc:  # noqa: BLE001  (torch-pruning's own failures, e.g. GCViT's ZeroDivisionError)
        raise failed(model, exc, what) from None


def failed(model: nn.Module, exc: Exception, what: str) -> ModelError:
    """One line: ``what`` cannot prune ``model`` because torch-pruning raised ``exc``."""
    return ModelError(f"{what} of {type(model).__name__} is not supported: torch-pruning failed on it "
                      f"({one_line(exc)})")


def one_line(exc: Exception, limit: int = 160) -> str:
    """``exc`` as ``Type: first line of its message`` (the message cut at ``limit`` characters)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit] if text else ''}"
