"""VBP's choice of MLP hidden neurons, and the mean-shift fold that compensates for their removal.

:func:`select_lowest` picks the lowest-scoring neurons (variance, :func:`magnitude_scores`, :func:`random_scores`);
:func:`fold_means` replaces a removed neuron by its constant mean (measured at ``mlp_out``'s input, after the
layers between): ``b_out += W_out[:, P] @ mean[P]`` -- weight arithmetic on the unpruned model. The removal itself
is surgery (:func:`edgeprune.surgery.neurons.remove_hidden`).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from edgeprune.errors import ConfigError, check_fraction
from edgeprune.surgery.neurons import layout

SELECTIONS = ("variance", "magnitude", "random")


def _matrix(layer: nn.Module) -> torch.Tensor:
    """A Linear's or 1x1 conv's weight as [out, in]."""
    w = layer.weight.detach()
    return w.reshape(w.shape[0], w.shape[1])


@torch.no_grad()
def magnitude_scores(model: nn.Module, block) -> torch.Tensor:
    """Structured magnitude of each hidden neuron of ``block`` ((mlp_in, mlp_out) names, or an MLP block with
    gates / chunks): squared L2 norm of every weight attached to it (its rows and bias entries in ``mlp_in``'s
    chunks and the gates, and its ``mlp_out`` column)."""
    block = layout(block)
    mlp_out = model.get_submodule(block[1])
    score = _matrix(mlp_out).double().square().sum(0)
    width = score.numel()
    for name in (block[0], *block.gates):
        layer = model.get_submodule(name)
        rows = _matrix(layer).double().square().sum(1)
        if layer.bias is not None:
            rows = rows + layer.bias.detach().double().square()
        score = score + rows.reshape(-1, width).sum(0)  # a chunked layer: each neuron's rows in every chunk
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


def fold_block_means(model: nn.Module, blocks: Mapping[str, tuple[str, str]], pruned: Mapping[str, torch.Tensor],
                     means: Mapping[str, torch.Tensor]) -> None:
    """:func:`fold_means` of every block {name: (mlp_in name, mlp_out name)}'s ``pruned`` neurons into its
    ``mlp_out`` (in place; before the neurons are removed)."""
    for name, (_, out_name) in blocks.items():
        idx = pruned.get(name)
        if idx is not None and idx.numel() > 0:
            fold_means(model.get_submodule(out_name), idx, means[name])
