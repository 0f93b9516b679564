"""Structured pruning of MLP hidden neurons: selection, mean-shift folding, physical removal.

A block is a pair of Linear layers (or of 1x1 convs) ``mlp_in`` (D -> H) and ``mlp_out`` (H -> D) with an
activation between them, and possibly per-neuron layers (``between``: a BatchNorm as in LeViT, a depthwise
conv as in PVTv2, a GRN as in ConvNeXtV2). Removing hidden neuron k deletes row k of ``mlp_in`` (and its
bias entry), entry k of every layer between, and column k of ``mlp_out``; the block's input and output
widths, and so the rest of the network, are unchanged. Mean-shift folding replaces a removed neuron by its
constant mean (measured at ``mlp_out``'s input, after the layers between): ``b_out += W_out[:, P] @ mean[P]``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError, check_fraction
from edgeprune.prune.lazy import tp

SELECTIONS = ("variance", "magnitude", "random")


def _pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups == 1 and all(k == 1 for k in m.kernel_size)


def hidden_width(mlp_in: nn.Module, mlp_out: nn.Module, name: str = "") -> int:
    """Hidden width H of an ``mlp_in -> act -> mlp_out`` block; ModelError unless it is a Linear pair or
    a 1x1-conv pair."""
    linear = isinstance(mlp_in, nn.Linear) and isinstance(mlp_out, nn.Linear)
    if not linear and not (_pointwise(mlp_in) and _pointwise(mlp_out)):
        raise ModelError(
            f"MLP block {name!r} is {type(mlp_in).__name__} -> {type(mlp_out).__name__}; "
            f"neuron pruning supports Linear -> Linear and 1x1 Conv2d -> 1x1 Conv2d blocks"
        )
    width, takes = (mlp_in.out_features, mlp_out.in_features) if linear else (mlp_in.out_channels, mlp_out.in_channels)
    if width != takes:
        raise ModelError(
            f"MLP block {name!r}: mlp_in has {width} outputs but mlp_out takes {takes} inputs; they must match"
        )
    return int(width)


def _matrix(layer: nn.Module) -> torch.Tensor:
    """A Linear's or 1x1 conv's weight as [out, in]."""
    w = layer.weight.detach()
    return w.reshape(w.shape[0], w.shape[1])


@torch.no_grad()
def magnitude_scores(mlp_in: nn.Linear, mlp_out: nn.Linear) -> torch.Tensor:
    """Structured magnitude of each hidden neuron: squared L2 norm of every weight attached to it
    (its ``mlp_in`` row and bias entry, and its ``mlp_out`` column)."""
    score = _matrix(mlp_in).double().square().sum(1) + _matrix(mlp_out).double().square().sum(0)
    if mlp_in.bias is not None:
        score = score + mlp_in.bias.detach().double().square()
    return score.cpu()


def random_scores(widths: Mapping[str, int], seed: int) -> dict[str, torch.Tensor]:
    """Uniform random scores (a seeded baseline for the selection ablation)."""
    gen = torch.Generator().manual_seed(int(seed))
    return {name: torch.rand(w, generator=gen, dtype=torch.float64) for name, w in widths.items()}


def select_lowest(
    scores: Mapping[str, torch.Tensor],
    ratio: float,
    *,
    per_layer: bool = False,
    min_keep: int = 1,
) -> dict[str, torch.Tensor]:
    """Indices of the neurons to prune in each block: the lowest-scoring ``ratio`` of neurons.

    Global mode (default) ranks all neurons of all blocks together and prunes ``round(ratio * total)``
    of them; per-layer mode prunes ``round(ratio * H)`` in every block. Every block keeps at least
    ``min_keep`` neurons: a neuron whose block is at its minimum is skipped and the next-lowest neuron
    elsewhere is taken instead, so the global count stays exact. Ties break by block order, then index.
    Returns {block: sorted int64 indices}.
    """
    check_fraction("ratio", ratio)
    if isinstance(min_keep, bool) or not isinstance(min_keep, int) or min_keep < 1:
        raise ConfigError(f"min_keep must be an integer >= 1, got {min_keep!r}")
    names = list(scores)
    widths = {n: int(scores[n].numel()) for n in names}
    for n in names:
        if widths[n] < min_keep:
            raise ConfigError(f"MLP block {n!r} has {widths[n]} neurons, fewer than min_keep={min_keep}")
    if per_layer:
        out = {}
        for n in names:
            k = min(int(round(ratio * widths[n])), widths[n] - min_keep)
            order = torch.sort(scores[n].double().cpu(), stable=True).indices
            out[n] = torch.sort(order[:k]).values
        return out

    total = sum(widths.values())
    target = int(round(ratio * total))
    allowed = total - min_keep * len(names)
    if target > allowed:
        raise ConfigError(
            f"ratio {ratio} would prune {target} of {total} MLP neurons, but keeping min_keep={min_keep} "
            f"per block allows at most {allowed}; lower the ratio or min_keep"
        )
    flat = torch.cat([scores[n].double().cpu() for n in names])
    block_of = torch.cat([torch.full((widths[n],), i, dtype=torch.long) for i, n in enumerate(names)])
    index_of = torch.cat([torch.arange(widths[n]) for n in names])
    order = torch.sort(flat, stable=True).indices  # stable: ties keep block order, then index
    budget = {n: widths[n] - min_keep for n in names}
    chosen: dict[str, list[int]] = {n: [] for n in names}
    taken = 0
    for pos in order.tolist():
        if taken == target:
            break
        n = names[int(block_of[pos])]
        if budget[n] == 0:
            continue
        budget[n] -= 1
        chosen[n].append(int(index_of[pos]))
        taken += 1
    return {n: torch.tensor(sorted(v), dtype=torch.long) for n, v in chosen.items()}


@torch.no_grad()
def fold_means(mlp_out: nn.Linear, pruned: torch.Tensor, mean: torch.Tensor) -> None:
    """Mean-shift compensation: ``b_out += W_out[:, pruned] @ mean[pruned]`` (bias created if absent).

    Computed in float64 and stored in the bias dtype; call before the columns are removed.
    """
    if pruned.numel() == 0:
        return
    w = mlp_out.weight
    shift = _matrix(mlp_out)[:, pruned].double() @ mean.to(w.device, torch.float64)[pruned]
    if mlp_out.bias is None:
        mlp_out.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
    mlp_out.bias.copy_((mlp_out.bias.double() + shift).to(mlp_out.bias.dtype))


def remove_neurons(mlp_in: nn.Linear, mlp_out: nn.Linear, pruned: torch.Tensor) -> None:
    """Physically delete hidden neurons ``pruned``: rows of ``mlp_in`` (+ bias), columns of ``mlp_out``.

    Uses torch-pruning's Linear pruning functions, which replace the Parameters and update
    ``out_features`` / ``in_features`` in place, so the surrounding model keeps working.
    """
    idxs = sorted(int(i) for i in pruned)
    if not idxs:
        return
    if isinstance(mlp_in, nn.Linear):
        tp.prune_linear_out_channels(mlp_in, idxs)
        tp.prune_linear_in_channels(mlp_out, idxs)
    else:
        tp.prune_conv_out_channels(mlp_in, idxs)
        tp.prune_conv_in_channels(mlp_out, idxs)


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


def prune_blocks(
    model: nn.Module,
    blocks: Mapping[str, tuple[str, str]],
    pruned: Mapping[str, torch.Tensor],
    means: Mapping[str, torch.Tensor] | None = None,
    between: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Prune ``model`` in place: for every block {name: (mlp_in name, mlp_out name)} fold the means of its
    pruned neurons into ``mlp_out``'s bias (when ``means`` is given), then remove the neurons from
    ``mlp_in``, ``mlp_out`` and the block's ``between`` layers (module names). All blocks are checked
    before the first one changes."""
    between = between or {}
    for name, (in_name, out_name) in blocks.items():
        width = hidden_width(model.get_submodule(in_name), model.get_submodule(out_name), name)
        for layer in between.get(name, ()):
            check_between(model.get_submodule(layer), width, name)
    for name, (in_name, out_name) in blocks.items():
        idx = pruned.get(name)
        if idx is None or idx.numel() == 0:
            continue
        mlp_in, mlp_out = model.get_submodule(in_name), model.get_submodule(out_name)
        width = hidden_width(mlp_in, mlp_out, name)
        if int(idx.min()) < 0 or int(idx.max()) >= width:
            raise ModelError(f"MLP block {name!r}: pruned indices must be in [0, {width}), got max {int(idx.max())}")
        if idx.numel() >= width:
            raise ModelError(f"MLP block {name!r}: cannot prune all {width} neurons; keep at least one")
        if means is not None:
            fold_means(mlp_out, idx, means[name])
        remove_neurons(mlp_in, mlp_out, idx)
        for layer in between.get(name, ()):
            shrink_between(model.get_submodule(layer), sorted(int(i) for i in idx), width)
