"""Removing MLP hidden neurons: a block ``mlp_in`` (D -> H) -> activation -> ``mlp_out`` (H -> D) loses hidden neurons.

A block is a pair of Linear layers (or of 1x1 convs) with an activation between them, and possibly per-neuron
layers (``between``: a BatchNorm as in LeViT, a depthwise conv as in PVTv2, a GRN as in ConvNeXtV2). Removing
hidden neuron k deletes row k of ``mlp_in`` (and its bias entry), entry k of every layer between, and column k of
``mlp_out``; the block's input and output widths, and so the rest of the network, are unchanged.

A gated block (SwiGLU, GeGLU) multiplies several inputs per hidden neuron: other Linears D -> H (``gates``, row k
goes too) or chunks of one Linear D -> c*H (``chunks`` = c: rows k, H + k, ... go). Gated blocks are cut by hand:
torch-pruning's group for a chunked layer removes rows of one chunk only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from edgeprune.errors import EdgepruneError, ModelError
from edgeprune.surgery.channels import remove_channels
from edgeprune.surgery.graph import build_graph, dismantle, group_of, named
from edgeprune.surgery.groups import TP_ERRORS
from edgeprune.surgery.lazy import tp
from edgeprune.surgery.search import bounded_groups

WHAT = "VBP's neuron removal"


class MlpBlock(tuple):
    """``(mlp_in name, mlp_out name)``, plus ``between``: the per-neuron layers called between them (a norm,
    a depthwise conv, a GRN), which lose the pruned neurons too; ``gates`` and ``chunks`` for a gated block."""

    between: tuple[str, ...]
    gates: tuple[str, ...]
    chunks: int

    def __new__(cls, mlp_in: str, mlp_out: str, between=(), gates=(), chunks: int = 1):
        self = super().__new__(cls, (mlp_in, mlp_out))
        self.between, self.gates, self.chunks = tuple(between), tuple(gates), int(chunks)
        return self

    def __reduce__(self):  # deepcopy / pickle keep the attributes
        return (MlpBlock, (self[0], self[1], self.between, self.gates, self.chunks))

    @property
    def gated(self) -> bool:
        return bool(self.gates) or self.chunks > 1

    def rows(self, idxs: Sequence[int], width: int) -> list[int]:
        """The output rows of ``mlp_in`` that hidden neurons ``idxs`` (of ``width``) are."""
        return [j * width + int(i) for j in range(self.chunks) for i in idxs]


def layout(block) -> MlpBlock:
    """``block`` as an :class:`MlpBlock` (a plain ``(mlp_in, mlp_out)`` pair is an ungated block)."""
    return block if isinstance(block, MlpBlock) else MlpBlock(*block)


def _pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups == 1 and all(k == 1 for k in m.kernel_size)


def hidden_width(mlp_in: nn.Module, mlp_out: nn.Module, name: str = "", chunks: int = 1) -> int:
    """Hidden width H of an ``mlp_in -> act -> mlp_out`` block (``mlp_in`` has ``chunks`` * H outputs); ModelError
    unless it is a Linear pair or a 1x1-conv pair."""
    linear = isinstance(mlp_in, nn.Linear) and isinstance(mlp_out, nn.Linear)
    if not linear and not (_pointwise(mlp_in) and _pointwise(mlp_out)):
        raise ModelError(
            f"MLP block {name!r} is {type(mlp_in).__name__} -> {type(mlp_out).__name__}; "
            f"neuron pruning supports Linear -> Linear and 1x1 Conv2d -> 1x1 Conv2d blocks"
        )
    width, takes = (mlp_in.out_features, mlp_out.in_features) if linear else (mlp_in.out_channels, mlp_out.in_channels)
    if width != chunks * takes:
        raise ModelError(
            f"MLP block {name!r}: mlp_in has {width} outputs but mlp_out takes {takes} inputs; they must match"
            + (f" ({chunks} chunks of it)" if chunks > 1 else "")
        )
    return int(takes)


def remove_neurons(model: nn.Module, block, pruned: torch.Tensor) -> None:
    """Physically delete hidden neurons ``pruned`` of ``block``: rows of ``mlp_in`` (every chunk) and of its gates
    (+ biases), columns of ``mlp_out``.

    Uses torch-pruning's Linear / conv pruning functions, which replace the Parameters and update
    ``out_features`` / ``in_features`` in place, so the surrounding model keeps working.
    """
    block = layout(block)
    idxs = sorted(int(i) for i in pruned)
    if not idxs:
        return
    mlp_in, mlp_out = model.get_submodule(block[0]), model.get_submodule(block[1])
    width = hidden_width(mlp_in, mlp_out, block[0], block.chunks)
    linear = isinstance(mlp_in, nn.Linear)
    prune_out = tp.prune_linear_out_channels if linear else tp.prune_conv_out_channels
    prune_in = tp.prune_linear_in_channels if linear else tp.prune_conv_in_channels
    prune_out(mlp_in, block.rows(idxs, width))
    for gate in block.gates:
        prune_out(model.get_submodule(gate), idxs)
    prune_in(mlp_out, idxs)


_BETWEEN_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def check_between(layer: nn.Module, width: int, name: str) -> None:
    """ModelError unless ``layer`` (between ``mlp_in`` and ``mlp_out``) can lose hidden neurons with them:
    a norm, a depthwise conv, or a layer whose every tensor has the hidden width in exactly one dimension."""
    what = f"MLP block {name!r}: the {type(layer).__name__} between mlp_in and mlp_out"
    if isinstance(layer, nn.GroupNorm) and layer.num_groups not in (1, layer.num_channels):
        raise ModelError(f"{what} normalises groups of neurons; VBP supports per-neuron layers there")
    if isinstance(layer, nn.modules.conv._ConvNd):
        if not (layer.groups == layer.in_channels == layer.out_channels == width):
            raise ModelError(f"{what} mixes hidden neurons (groups {layer.groups}); VBP supports depthwise convs there")
        return
    if isinstance(layer, _BETWEEN_NORMS):
        return
    for pname, t in [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]:
        if t.numel() > 1 and list(t.shape).count(width) != 1:
            raise ModelError(f"{what} holds {pname} of shape {tuple(t.shape)}, which does not follow the "
                             f"{width} hidden neurons; VBP cannot shrink it")


def shrink_between(layer: nn.Module, pruned: list[int], width: int) -> None:
    """Remove hidden neurons ``pruned`` from a layer between ``mlp_in`` and ``mlp_out`` (see check_between)."""
    if isinstance(layer, nn.modules.conv._ConvNd):
        tp.prune_depthwise_conv_out_channels(layer, pruned)
        return
    pruners = (tp.prune_batchnorm_out_channels, tp.prune_layernorm_out_channels, tp.prune_groupnorm_out_channels)
    for kind, prune in zip(_BETWEEN_NORMS, pruners):
        if isinstance(layer, kind):
            prune(layer, pruned)
            return
    keep_mask = torch.ones(width, dtype=torch.bool)
    keep_mask[torch.as_tensor(pruned, dtype=torch.long)] = False
    with torch.no_grad():
        for pname, t in [*layer.named_parameters(recurse=False), *layer.named_buffers(recurse=False)]:
            if t.numel() <= 1:
                continue
            dim = list(t.shape).index(width)
            keep = torch.nonzero(keep_mask).flatten().to(t.device)
            new = t.detach().index_select(dim, keep).clone()
            if isinstance(t, nn.Parameter):
                setattr(layer, pname, nn.Parameter(new, requires_grad=t.requires_grad))
            else:
                layer._buffers[pname] = new


def check_blocks(model: nn.Module, blocks: Mapping[str, tuple[str, str]], pruned: Mapping[str, torch.Tensor],
                 between: Mapping[str, Sequence[str]]) -> None:
    """ModelError naming the first block {name: (mlp_in name, mlp_out name) or :class:`MlpBlock`} that cannot lose its
    ``pruned`` neurons: not a Linear or 1x1-conv pair, a gate of another width, a layer ``between`` that mixes
    neurons, indices out of range, or all."""
    for name, block in blocks.items():
        block = layout(block)
        width = hidden_width(model.get_submodule(block[0]), model.get_submodule(block[1]), name, block.chunks)
        for gate in block.gates:
            if hidden_width(model.get_submodule(gate), model.get_submodule(block[1]), name) != width:
                raise ModelError(f"MLP block {name!r}: gate {gate!r} does not have the {width} hidden neurons")
        for layer in between.get(name, ()):
            check_between(model.get_submodule(layer), width, name)
        idx = pruned.get(name)
        if idx is None or idx.numel() == 0:
            continue
        if int(idx.min()) < 0 or int(idx.max()) >= width:
            raise ModelError(f"MLP block {name!r}: pruned indices must be in [0, {width}), got max {int(idx.max())}")
        if idx.numel() >= width:
            raise ModelError(f"MLP block {name!r}: cannot prune all {width} neurons; keep at least one")


def _allowed(model: nn.Module, block: tuple[str, str], between: Sequence[str]) -> tuple[set, set]:
    """The modules a block's neurons live in (mlp_in, mlp_out, the layers between) and the between layers' own
    parameters (a GRN's gamma and beta, which torch-pruning prunes as parameters of no known layer)."""
    names = {block[0], block[1], *between}
    params = {id(p) for n in between for p in model.get_submodule(n).parameters(recurse=False)}
    return names, params


def _only_the_block(graph, group, names: set, params: set) -> bool:
    """Whether torch-pruning's ``group`` touches nothing but the block (its layers, its between layers' parameters,
    and layers without weights or buffers: an activation, a dropout)."""
    for dep, _ in group:
        target = dep.target.module
        if isinstance(target, nn.Parameter):
            if id(target) not in params:
                return False
        elif named(graph, target) not in (None, *names) and _holds_tensors(target):
            return False
    return True


def _holds_tensors(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _graph_plan(model: nn.Module, example: torch.Tensor, blocks: Mapping[str, tuple[str, str]],
                pruned: Mapping[str, torch.Tensor], between: Mapping[str, Sequence[str]]) -> tuple[object, dict, set[str]]:
    """(the dependency graph, the removal plan {mlp_in: indices}, the blocks it covers): every block whose coupled
    group is the block itself; (None, {}, set()) when torch-pruning cannot trace or group the model."""
    try:
        graph = build_graph(model, example)
        plan, done = {}, set()
        with bounded_groups(model, graph, WHAT):
            for name, (in_name, _) in blocks.items():
                idxs = [int(i) for i in pruned[name]]
                group = group_of(graph, model.get_submodule(in_name), idxs)
                if _only_the_block(graph, group, *_allowed(model, blocks[name], between.get(name, ()))):
                    plan[in_name], done = idxs, done | {name}
        return graph, plan, done
    except (EdgepruneError, *TP_ERRORS):  # every block by hand then
        return None, {}, set()


def remove_hidden(model: nn.Module, blocks: Mapping[str, tuple[str, str]], pruned: Mapping[str, torch.Tensor],
                  between: Mapping[str, Sequence[str]] | None = None, example: torch.Tensor | None = None) -> None:
    """Remove hidden neurons ``pruned`` ({block: indices}) of every block {name: (mlp_in name, mlp_out name) or
    :class:`MlpBlock`} from ``mlp_in`` (and a gated block's gates), ``mlp_out`` and the block's ``between`` layers
    (module names), in place: through the dependency graph traced on ``example`` where an ungated block is a group
    of its own, by hand otherwise (see the module docstring). All
    blocks are checked (:func:`check_blocks`) before the first one changes."""
    between = between or {}
    check_blocks(model, blocks, pruned, between)
    todo = {n: layout(blocks[n]) for n, idx in pruned.items() if n in blocks and idx is not None and idx.numel() > 0}
    graph, plan, done = None, {}, set()
    ungated = {n: b for n, b in todo.items() if not b.gated}
    if example is not None and ungated:
        example = example.to(next(model.parameters()).device)
        graph, plan, done = _graph_plan(model, example, ungated, pruned, between)
    if plan:
        with bounded_groups(model, graph, WHAT):
            remove_channels(model, example, plan, graph=graph)
    if graph is not None:
        dismantle(graph)
    for name, block in todo.items():
        if name in done:
            continue
        width = hidden_width(model.get_submodule(block[0]), model.get_submodule(block[1]), name, block.chunks)
        remove_neurons(model, block, pruned[name])
        for layer in between.get(name, ()):
            shrink_between(model.get_submodule(layer), sorted(int(i) for i in pruned[name]), width)
