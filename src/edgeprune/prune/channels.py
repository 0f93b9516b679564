"""Structured channel removal through torch-pruning's DependencyGraph.

Removing output channels of one layer also removes them from everything coupled to that layer: its
BatchNorm, the input channels of its consumers (next conv, the Linear after a global pool) and, in
residual networks, every other layer feeding the same residual sum. torch-pruning traces the model
once and finds those couplings; this module only translates between module names, original channel
numbers and torch-pruning's groups, and refuses plans that would empty a layer or change the model's
output shape.

Two entry points:

* :func:`coupled_groups` lists the sets of layers whose output channels are tied together (one set per
  residual stream, one per plain layer), without changing the model.
* :func:`remove_channels` physically removes the planned output channels and reports, for every module
  it touched, which original input/output indices it lost (so masks can be sliced to match).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError
from edgeprune.prune.lazy import tp
from edgeprune.tasks import current as current_task

#: layers whose output channels a plan may name (the roots of torch-pruning groups)
ROOT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


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
    failed: str = ""  # torch-pruning failed to find the group (the exception, one line; protected then)


def dense_forward(model: nn.Module, x: torch.Tensor):
    """``model``'s forward as a runtime runs it: the current task's deployable part (a detector before its
    decoding and NMS, whose eval output is a list of dicts of varying sizes; the model itself for other tasks).
    What structured pruning traces and checks, with module names still relative to ``model``."""
    return current_task().deployable(model)(x)


def trace_forward(model: nn.Module, x: torch.Tensor):
    """:func:`dense_forward` for torch-pruning's trace, run in train mode when that reaches layers the eval forward
    does not (GoogLeNet's and Inception v3's auxiliary classifiers run only in training: a graph traced without
    them leaves their input widths stale and the fine-tune fails). Buffers (BatchNorm statistics) are restored."""
    if not _train_only_layers(model, x):
        return dense_forward(model, x)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    try:
        return dense_forward(model, x)
    finally:
        model.eval()
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])


def _reached(model: nn.Module, x: torch.Tensor, training: bool) -> set[nn.Module]:
    """The prunable layers ``model``'s forward reaches in the given mode (empty if that forward fails)."""
    seen: set[nn.Module] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: seen.add(m)) for m in model.modules() if isinstance(m, ROOT_TYPES)]
    was, buffers = model.training, {name: b.clone() for name, b in model.named_buffers()}
    model.train(training)
    try:
        with torch.no_grad():
            dense_forward(model, x)
    except Exception:  # noqa: BLE001  (a forward that fails in train mode, a detector without targets: eval it is)
        seen.clear()
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
    return seen


def _train_only_layers(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``model`` has prunable layers that only its train-mode forward reaches."""
    everything = {m for m in model.modules() if isinstance(m, ROOT_TYPES)}
    in_eval = _reached(model, x, training=False)
    return bool(everything - in_eval) and bool(_reached(model, x, training=True) - in_eval)


def build_graph(model: nn.Module, example_input: torch.Tensor):
    """torch-pruning's DependencyGraph of ``model`` traced on ``example_input`` (through :func:`dense_forward`).

    The trace runs in eval mode so BatchNorm running statistics are not updated by it; the model's
    train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input, forward_fn=trace_forward,
                                                         verbose=False)
    except Exception as exc:  # tracing failures are model problems, not bugs of ours
        raise ModelError(f"cannot trace {type(model).__name__} for structured pruning: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        model.train(was_training)
    return graph


def output_modules(model: nn.Module, example_input: torch.Tensor | None = None, *, graph=None) -> set[str]:
    """Names of the Conv/Linear layers whose output channels are the model's output channels.

    Found on the traced graph: from every sink (a node nothing consumes) walk back through
    channel-preserving operations (norms, activations, pools, adds, reshapes) to the first Conv/Linear
    layers (and past frozen ones, see :func:`_frozen`). Changing their output channels would change the output shape, so they are never pruned.
    """
    graph = graph or build_graph(model, example_input)
    found: set[str] = set()
    stack = [node for node in graph.module2node.values() if not node.outputs]
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.module, ROOT_TYPES):
            name = _named(graph, node.module)
            if name:
                found.add(name)
            if not _frozen(node.module):
                continue
        stack.extend(node.inputs)
    return found


def _frozen(module: nn.Module) -> bool:
    """A layer without trainable parameters (YOLO's DFL conv, a fixed expectation over bins): part of the
    computation of the output from the layers before it, which produce the output channels too."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def _widens_input(graph, module: nn.Module) -> bool:
    """A grouped conv reading the traced input with no Conv/Linear in between: its input channels move with its
    output channels, so pruning it would change the width of the input (of a block traced alone, see
    :mod:`edgeprune.prune.blocks`)."""
    if not isinstance(module, nn.modules.conv._ConvNd) or module.groups == 1:
        return False
    stack, seen = [graph.module2node[module]], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node.inputs:
            return True
        stack.extend(n for n in node.inputs if not isinstance(n.module, ROOT_TYPES))
    return False


def _named(graph, module) -> str | None:
    return graph._module2name.get(module) if isinstance(module, nn.Module) else None


def _group_of(graph, module: nn.Module, idxs: Sequence[int]):
    pruner = graph.get_pruner_of_module(module)
    if pruner is None:
        raise ConfigError(f"layer type {type(module).__name__} cannot lose output channels")
    return graph.get_pruning_group(module, pruner.prune_out_channels, list(idxs))


def coupled_groups(model: nn.Module, example_input: torch.Tensor, *, graph=None,
                   failing: tuple[type[Exception], ...] = ()) -> list[ChannelGroup]:
    """Every set of Conv/Linear layers whose output channels are tied, in module order.

    A layer whose output channels are coupled with nothing forms a group of one. Nothing is modified. A layer
    whose group torch-pruning fails to find with one of the ``failing`` exceptions (GCViT's expand of a zero
    head dim) forms a protected group of one (never pruned).
    """
    graph = graph or build_graph(model, example_input)
    outputs = output_modules(model, graph=graph)
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
        try:
            group = _group_of(graph, module, range(channels))
        except failing as exc:
            groups.append(ChannelGroup(members=[name], channels=int(channels), protected=True,
                                       failed=f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"))
            continue
        members, consumers, norms = [], [], []
        for dep, _ in group:
            target = _named(graph, dep.target.module)
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
                protected=any(m in outputs or _widens_input(graph, modules[m]) for m in members),
            )
        )
    return sorted(groups, key=lambda g: order.get(g.members[0], -1) if g.members else -1)


def _check_plan(model: nn.Module, graph, plan: dict) -> dict[str, list[int]]:
    modules = dict(model.named_modules())
    clean = {}
    for name, idxs in plan.items():
        module = modules.get(name)
        if module is None or not name:
            raise ConfigError(f"plan names unknown layer {name!r}")
        if not isinstance(module, ROOT_TYPES) or module not in graph.module2node:
            raise ConfigError(f"plan names layer {name!r} ({type(module).__name__}); only Conv/Linear layers in the traced graph can lose output channels")
        channels = graph.get_out_channels(module)
        idxs = sorted({int(i) for i in idxs})
        if idxs and (idxs[0] < 0 or idxs[-1] >= channels):
            raise ConfigError(f"plan for layer {name!r}: channel indices must be in [0, {channels}), got {idxs[0] if idxs[0] < 0 else idxs[-1]}")
        if idxs:
            clean[name] = idxs
    return clean


def _dim_sizes(module: nn.Module, graph) -> tuple[int | None, int | None]:
    node = graph.module2node.get(module)
    if node is None:
        return None, None
    return graph.get_in_channels(module), graph.get_out_channels(module)


def remove_channels(model: nn.Module, example_input: torch.Tensor, plan: dict[str, Sequence[int]], *,
                    graph=None) -> dict[str, dict]:
    """Physically remove output channels of the layers named in ``plan`` (and everything coupled to them).

    ``plan`` maps a Conv/Linear module name to the ORIGINAL indices of the output channels to remove.
    Layers coupled through a residual sum form one group; the indices planned for several members of one
    group are merged (the group loses their union). Returns ``{module name: {"out": [...], "in": [...]}}``
    with the original indices every touched module lost (BatchNorms under ``"out"``).

    Raises ConfigError naming the layer if the plan names an unknown layer, indices out of range, would
    remove every channel of some layer, or would change the model's output shape. The model is left
    untouched when the plan is refused (all checks run before the first removal). ``graph`` may be a
    DependencyGraph of the unmodified model from :func:`build_graph` (saves a second trace); it is
    modified along with the model.
    """
    graph = graph or build_graph(model, example_input)
    clean = _check_plan(model, graph, plan)
    outputs = output_modules(model, graph=graph)
    modules = dict(model.named_modules())

    # Merge planned indices per coupled group and validate every group before touching anything.
    groups: list[tuple[nn.Module, list[int]]] = []
    claimed: dict[str, int] = {}  # member name -> index into groups
    for name, idxs in clean.items():
        if name in claimed:
            root, have = groups[claimed[name]]
            groups[claimed[name]] = (root, sorted(set(have) | set(idxs)))
            continue
        module = modules[name]
        group = _group_of(graph, module, range(graph.get_out_channels(module)))
        members = [_named(graph, d.target.module) for d, _ in group
                   if graph.is_out_channel_pruning_fn(d.handler) and isinstance(d.target.module, ROOT_TYPES)]
        for m in members:
            if m in claimed and m != name:
                root, have = groups[claimed[m]]
                groups[claimed[m]] = (root, sorted(set(have) | set(idxs)))
                claimed[name] = claimed[m]
                break
        else:
            claimed.update({m: len(groups) for m in members})
            groups.append((module, idxs))
        hit = [m for m in members if m in outputs]
        if hit:
            raise ConfigError(f"layer {hit[0]!r} produces the model's output; removing its channels would change the output shape")

    for root, idxs in groups:
        group = _group_of(graph, root, idxs)
        for dep, dep_idxs in group:
            target = dep.target.module
            if not isinstance(target, nn.Module):
                continue
            n_in, n_out = _dim_sizes(target, graph)
            if graph.is_out_channel_pruning_fn(dep.handler):
                size, what = n_out, "output"
            elif graph.is_in_channel_pruning_fn(dep.handler):
                size, what = n_in, "input"
            else:
                continue
            if size is not None and len(set(dep_idxs)) >= size:
                name = _named(graph, target) or type(target).__name__
                raise ConfigError(
                    f"refusing to remove all {size} {what} channels of layer {name!r}; keep at least one channel"
                )

    # Alive original indices per (module, side): maps torch-pruning's current indices back to originals.
    alive: dict[tuple[str, str], list[int]] = {}

    def originals(name: str, side: str, module: nn.Module, current: Sequence[int]) -> list[int]:
        key = (name, side)
        if key not in alive:
            n_in, n_out = _dim_sizes(module, graph)
            size = n_out if side == "out" else n_in
            alive[key] = list(range(int(size)))
        live = alive[key]
        picked = [live[i] for i in sorted(set(int(i) for i in current))]
        drop = set(picked)
        alive[key] = [i for i in live if i not in drop]
        return picked

    removed: dict[str, dict] = {}
    for root, idxs in groups:
        root_name = _named(graph, root)
        key = (root_name, "out")
        live = alive.get(key, list(range(int(graph.get_out_channels(root)))))
        alive.setdefault(key, live)
        position = {orig: i for i, orig in enumerate(live)}
        current = [position[i] for i in idxs if i in position]
        if not current:
            continue
        group = _group_of(graph, root, current)
        if not graph.check_pruning_group(group):  # belt and braces: our check above should have caught it
            raise ConfigError(f"refusing to prune layer {root_name!r}: a coupled layer would lose every channel")
        # record original indices before pruning (sizes are read from the unpruned modules)
        record = []
        for dep, dep_idxs in group:
            target = dep.target.module
            name = _named(graph, target)
            if name is None:
                continue
            if graph.is_out_channel_pruning_fn(dep.handler):
                side = "out"
            elif graph.is_in_channel_pruning_fn(dep.handler):
                side = "in"
            else:
                continue
            record.append((name, side, originals(name, side, target, dep_idxs)))
        group.prune()
        for name, side, orig in record:
            entry = removed.setdefault(name, {"out": [], "in": []})
            entry[side] = sorted(set(entry[side]) | set(orig))
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return dict(sorted(removed.items(), key=lambda kv: order.get(kv[0], len(order))))
