"""Removing output channels by their original indices, through torch-pruning's dependency graph.

:func:`remove_channels` physically removes the planned output channels of Conv/Linear layers (and everything
coupled to them: norms, consumers' inputs, the other members of a residual stream) and reports, for every module
it touched, which original input/output indices it lost (so masks can be sliced to match). It refuses plans that
would empty a layer or change the model's output shape, before the first removal.

:func:`remove_checked` also checks that the model still runs afterwards and, if it does not (a coupling
torch-pruning cannot see), finds the planned groups at fault by bisection and removes the others;
:func:`remove_in_parts` does so in every part of a model traced whole or in blocks (:mod:`edgeprune.surgery.blocks`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Sequence

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError
from edgeprune.surgery import blocks as blocks_lib
from edgeprune.surgery.attributes import widths_followed
from edgeprune.surgery.checks import failure, twin
from edgeprune.surgery.graph import ROOT_TYPES, build_graph, dismantle, group_of, named, output_modules
from edgeprune.surgery.groups import ChannelGroup, one_line
from edgeprune.surgery.search import bounded_groups

BISECT_SECONDS = 20.0  # time for bisecting the groups that break a model (each try traces a copy)

Removed = dict[str, dict]  # module name -> {"out": [original indices], "in": [original indices]}


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


def side_of(graph, dep) -> str | None:
    """"out" or "in": which channels of its layer a dependency removes (None: neither)."""
    if graph.is_out_channel_pruning_fn(dep.handler):
        return "out"
    if graph.is_in_channel_pruning_fn(dep.handler):
        return "in"
    return None


def _merged_groups(model: nn.Module, graph, clean: dict[str, list[int]]) -> list[tuple[nn.Module, list[int]]]:
    """One (root layer, original indices) per coupled group the plan names: the indices planned for several
    members of one group are merged (the group loses their union). A group producing the model's output is refused."""
    outputs = output_modules(model, graph=graph)
    modules = dict(model.named_modules())
    groups: list[tuple[nn.Module, list[int]]] = []
    claimed: dict[str, int] = {}  # member name -> index into groups
    for name, idxs in clean.items():
        if name in claimed:
            root, have = groups[claimed[name]]
            groups[claimed[name]] = (root, sorted(set(have) | set(idxs)))
            continue
        module = modules[name]
        group = group_of(graph, module, range(graph.get_out_channels(module)))
        members = [named(graph, d.target.module) for d, _ in group
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
    return groups


def _emptying(graph, root: nn.Module, idxs: list[int]) -> str | None:
    """Why removing ``idxs`` of ``root``'s group would leave some layer without input or output channels (None: it
    would not)."""
    for dep, dep_idxs in group_of(graph, root, idxs):
        target = dep.target.module
        side = side_of(graph, dep) if isinstance(target, nn.Module) else None
        if side is None:
            continue
        n_in, n_out = _dim_sizes(target, graph)
        size = n_out if side == "out" else n_in
        if size is not None and len(set(dep_idxs)) >= size:
            name = named(graph, target) or type(target).__name__
            return (f"refusing to remove all {size} {'output' if side == 'out' else 'input'} channels "
                    f"of layer {name!r}; keep at least one channel")
    return None


class Originals:
    """The original indices still alive per (module, side): maps torch-pruning's current indices back."""

    def __init__(self, graph):
        self.graph, self.alive = graph, {}

    def live(self, name: str, side: str, module: nn.Module) -> list[int] | None:
        """None: the module has no width of its own on that side (a blur built without a channel count)."""
        if (name, side) not in self.alive:
            n_in, n_out = _dim_sizes(module, self.graph)
            size = n_out if side == "out" else n_in
            self.alive[(name, side)] = None if size is None else list(range(int(size)))
        return self.alive[(name, side)]

    def take(self, name: str, side: str, module: nn.Module, current: Sequence[int]) -> list[int] | None:
        live = self.live(name, side, module)
        if live is None:
            return None
        picked = [live[i] for i in sorted(set(int(i) for i in current))]
        drop = set(picked)
        self.alive[(name, side)] = [i for i in live if i not in drop]
        return picked


def _apply(graph, groups: list[tuple[nn.Module, list[int]]]) -> Removed:
    """Remove every group's channels (in place); the original indices every touched module lost."""
    originals, removed = Originals(graph), {}
    with widths_followed(graph.model):
        for root, idxs in groups:
            root_name = named(graph, root)
            position = {orig: i for i, orig in enumerate(originals.live(root_name, "out", root))}
            current = [position[i] for i in idxs if i in position]
            if not current:
                continue
            group = group_of(graph, root, current)
            if not graph.check_pruning_group(group):  # belt and braces: _emptying should have caught it
                raise ConfigError(f"refusing to prune layer {root_name!r}: a coupled layer would lose every channel")
            record = lost(graph, originals, group)
            group.prune()
            merge(removed, record)
    return removed


def lost(graph, originals: Originals, group) -> list[tuple[str, str, list[int]]]:
    """(module name, "out" or "in", original indices) of what each member of ``group`` loses: read before the group
    is pruned (sizes are read from the unpruned modules)."""
    record = []
    for dep, dep_idxs in group:
        name, side = named(graph, dep.target.module), side_of(graph, dep)
        picked = None if name is None or side is None else originals.take(name, side, dep.target.module, dep_idxs)
        if picked is not None:
            record.append((name, side, picked))
    return record


def merge(removed: Removed, record: list[tuple[str, str, list[int]]], prefix: str = "") -> Removed:
    """Add :func:`lost`'s ``record`` (module names under ``prefix``) to ``removed``."""
    for name, side, orig in record:
        entry = removed.setdefault(_full(prefix, name), {"out": [], "in": []})
        entry[side] = sorted(set(entry[side]) | set(orig))
    return removed


def remove_channels(model: nn.Module, example_input: torch.Tensor, plan: dict[str, Sequence[int]], *,
                    graph=None, left_alone: dict[str, str] | None = None) -> Removed:
    """Physically remove output channels of the layers named in ``plan`` (and everything coupled to them).

    ``plan`` maps a Conv/Linear module name to the ORIGINAL indices of the output channels to remove.
    Layers coupled through a residual sum form one group; the indices planned for several members of one
    group are merged (the group loses their union). Returns ``{module name: {"out": [...], "in": [...]}}``
    with the original indices every touched module lost (BatchNorms under ``"out"``).

    Raises ConfigError naming the layer if the plan names an unknown layer, indices out of range, would
    remove every channel of some layer, or would change the model's output shape. The model is left
    untouched when the plan is refused (all checks run before the first removal). ``graph`` may be a
    DependencyGraph of the unmodified model from :func:`~edgeprune.surgery.graph.build_graph` (saves a second
    trace); it is modified along with the model. With ``left_alone`` (a dict), a group that would empty a coupled
    layer is not refused but left alone: ``left_alone[its root layer] = why``, and the other groups are removed.
    """
    if graph is None:
        graph = build_graph(model, example_input)
        try:
            return remove_channels(model, example_input, plan, graph=graph, left_alone=left_alone)
        finally:
            dismantle(graph)  # (a caller's graph is the caller's to drop)
    groups = []
    for root, idxs in _merged_groups(model, graph, _check_plan(model, graph, plan)):
        why = _emptying(graph, root, idxs)
        if why is None:
            groups.append((root, idxs))
        elif left_alone is None:
            raise ConfigError(why)
        else:
            left_alone[named(graph, root)] = why
    removed = _apply(graph, groups)
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return dict(sorted(removed.items(), key=lambda kv: order.get(kv[0], len(order))))


def _attempt(model: nn.Module, example: torch.Tensor, plan: dict, graph, left_alone: dict[str, str] | None = None
             ) -> tuple[str | None, Removed]:
    """(None or the failure in one line, removed indices) of removing ``plan`` from ``model`` in place."""
    try:
        removed = remove_channels(model, example, plan, graph=graph, left_alone=left_alone)
    except ConfigError as exc:  # a coupled layer torch-pruning would empty (timm's cpubone): that group stays
        return str(exc)[:200], {}
    except Exception as exc:  # noqa: BLE001  (torch-pruning's own failures on layers it mis-handles)
        return one_line(exc, 200)[:200], {}
    return failure(model, example), removed


def _find_broken(backup: nn.Module, example: torch.Tensor, items: list, error: str, deadline: float,
                 what: str) -> dict[str, str]:
    """{group root: error} of the planned groups that break the model, by bisection on copies of ``backup``
    (a ModelError when that takes longer than ``deadline``, a perf_counter time)."""
    if len(items) == 1:
        return {items[0][0]: error}
    half = len(items) // 2
    broken = {}
    for part in (items[:half], items[half:]):
        if time.perf_counter() > deadline:
            raise ModelError(f"{what} cannot prune {type(backup).__name__}: removing its channels breaks the model "
                             f"({error}) and finding the groups at fault took over {BISECT_SECONDS:g} s")
        problem, _ = _attempt(twin(backup), example, dict(part), None)
        if problem is not None:
            broken.update(_find_broken(backup, example, part, problem, deadline, what))
    if not broken:  # only the combination breaks it: refuse all of them
        broken = {root: error for root, _ in items}
    return broken


def remove_checked(model: nn.Module, example: torch.Tensor, plan: dict, graph, what: str
                   ) -> tuple[nn.Module, Removed, dict[str, str]]:
    """:func:`remove_channels`, then check that the model still runs. If torch-pruning fails, or the model does
    not run afterwards (a reshape to a hard-coded width, as PVT's spatial reduction), the planned groups are
    bisected on copies; the ones that break the model are left alone and the rest removed. Returns (the pruned
    model -- possibly a new object --, removed indices, {group root left alone: why})."""
    if not plan:
        return model, {}, {}
    backup, emptying = twin(model), {}
    error, removed = _attempt(model, example, plan, graph, emptying)  # groups that would empty a layer: known untried
    if error is None:
        return model, removed, emptying
    plan = {root: idxs for root, idxs in plan.items() if root not in emptying}
    broken = _find_broken(backup, example, list(plan.items()), error, time.perf_counter() + BISECT_SECONDS, what)
    kept_plan = {root: idxs for root, idxs in plan.items() if root not in broken}
    broken.update(emptying)
    error, removed = _attempt(backup, example, kept_plan, None) if kept_plan else (None, {})
    if error is not None:
        raise ModelError(f"{what} cannot prune {type(backup).__name__}: removing channels breaks the model "
                         f"({error}); couplings torch-pruning cannot trace")
    return backup, removed, broken


def remove_in_parts(model: nn.Module, example: torch.Tensor, parts: dict, plan: dict[str, list[int]], what: str
                    ) -> tuple[Removed, dict[str, str]]:
    """:func:`remove_checked` in every part of ``model`` (in place): ``parts`` is
    :func:`~edgeprune.surgery.blocks.whole_or_blocks`' ``{prefix: (its input, (graph, groups))}`` (``""``: the whole
    model; their graphs are dismantled), ``plan`` keyed by full module names. Returns (removed indices, {group root
    left alone: why}), both by full names; a model pruned in blocks that no longer runs as a whole is refused
    (ModelError)."""
    modules = dict(model.named_modules())
    removed, broken = {}, {}
    for prefix, (part_input, (graph, _)) in parts.items():
        block, cut = modules[prefix], len(prefix) + 1 if prefix else 0
        part_plan = {root[cut:]: idxs for root, idxs in plan.items() if not prefix or root.startswith(prefix + ".")}
        try:
            with bounded_groups(block, graph, what):
                pruned, gone, bad = remove_checked(block, part_input, part_plan, graph, what)
        finally:
            dismantle(graph)
        if pruned is not block:
            blocks_lib.adopt(block, pruned)
        removed.update({_full(prefix, n): r for n, r in gone.items()})
        broken.update({_full(prefix, n): r for n, r in bad.items()})
    if "" not in parts and (error := failure(model, example)):
        raise ModelError(f"{what} cannot prune {type(model).__name__}: removing channels inside its blocks breaks "
                         f"the model ({error})")
    return removed, broken


def full_groups(parts: dict) -> list[ChannelGroup]:
    """The coupled groups of every part of :func:`~edgeprune.surgery.blocks.whole_or_blocks`' ``parts``, their module
    names made full (prefixed with their block's name)."""
    return [replace(g, members=[_full(p, m) for m in g.members], consumers=[_full(p, m) for m in g.consumers],
                    norms=[_full(p, m) for m in g.norms]) for p, (_, (_, part)) in parts.items() for g in part]


def _full(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
