"""Variance-Based Pruning (Berisha et al., ICCV 2025), the pruning itself: MLP hidden neurons of a trained network.

One pass of calibration data gives every MLP hidden neuron's post-activation mean and variance (the
input of ``mlp_out``); the lowest-variance neurons of the whole network are removed, their means are
folded into ``mlp_out``'s bias (mean-shift compensation), and the pruned model is fine-tuned with
knowledge distillation from the unpruned one. MLP blocks are found by layer roles, never by names.

    pruned, stats = edgeprune.methods.vbp.prune(model, calib_loader, 0.5)

This module writes nothing; :mod:`edgeprune.methods.vbp` re-exports it. The registered method
(``edgeprune.sweep(..., method="vbp")``, :mod:`edgeprune.methods.catalog.vbp`) runs it with the shared run layer.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from edgeprune import roles
from edgeprune.errors import ConfigError, DataError, ModelError, check_fraction
from edgeprune.prune.neurons import SELECTIONS, fold_block_means, magnitude_scores, random_scores, select_lowest
from edgeprune.scores.activations import RunningMoments, describe_shape_mismatch, input_statistics
from edgeprune.surgery.neurons import MlpBlock, check_blocks, hidden_width, remove_hidden

DEFAULT_MIN_KEEP = 1  # neurons every MLP block keeps, whatever the ratio (the paper does not say)


# --------------------------------------------------------------------------------------------------
# finding MLP blocks


def _expected_input(model: nn.Module) -> tuple | None:
    build = getattr(model, "edgeprune_build", None)
    if isinstance(build, dict) and all(isinstance(build.get(k), int) for k in ("in_channels", "image_size")):
        return (build["in_channels"], build["image_size"], build["image_size"])
    return None


def _first_input(loader) -> torch.Tensor:
    for batch in loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return x[:1]
    raise DataError("calibration data is empty: no batch to collect activation statistics from")


def example_input_for(model: nn.Module, loader=None) -> torch.Tensor:
    """One zero image of the shape the model was built for, else the first calibration image."""
    shape = _expected_input(model)
    if shape is not None:
        return torch.zeros(1, *shape)
    if loader is None:
        raise ModelError("the model has no edgeprune_build; pass example_input= or calibration data")
    return _first_input(loader)


@torch.no_grad()
def _between_layers(model: nn.Module, example_input: torch.Tensor, blocks) -> dict[str, tuple[str, ...]]:
    """{mlp_in name: names of the layers with parameters or buffers called between mlp_in and mlp_out whose
    output has the hidden width (a gated block's gates aside)}: one forward pass with hooks, in call order."""
    order: dict[str, int] = {}
    shapes: dict[str, tuple] = {}
    handles = []
    for name, module in model.named_modules():
        if not name or not (next(module.parameters(recurse=False), None) is not None
                            or next(module.buffers(recurse=False), None) is not None):
            continue

        def hook(mod, args, output, _name=name):
            if _name not in order and isinstance(output, torch.Tensor):
                order[_name] = len(order)
                shapes[_name] = tuple(output.shape)

        handles.append(module.register_forward_hook(hook))
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        model(example_input)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    out = {}
    for block in blocks:
        a, b = block
        width = hidden_width(model.get_submodule(a), model.get_submodule(b), a, block.chunks)
        if a not in order or b not in order:
            out[a] = ()
            continue
        out[a] = tuple(n for n, i in sorted(order.items(), key=lambda kv: kv[1])
                       if order[a] < i < order[b] and width in shapes[n][1:] and n not in block.gates)
    return out


def find_mlp_blocks(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[str, str]]:
    """{block name (= the mlp_in module name): (mlp_in name, mlp_out name)} in forward order.

    Blocks come from :func:`edgeprune.roles.classify`; Linear -> Linear and 1x1-conv pairs qualify, gated ones
    too (SwiGLU / GeGLU). Each value is an :class:`MlpBlock` whose ``between`` names the per-neuron layers between
    the pair.
    ModelError (naming the roles that were found) when the model has none.
    """
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        table = roles.classify(model, example_input.to(device))
    except RuntimeError as exc:
        raise describe_shape_mismatch(tuple(example_input.shape), _expected_input(model), exc) from None
    pairs = []
    for mlp_in, mlp_out in table.mlp_pairs():
        a, b = mlp_in.module_name, mlp_out.module_name
        chunks = mlp_in.shape[0] // mlp_out.shape[1]
        hidden_width(model.get_submodule(a), model.get_submodule(b), a, chunks)
        pairs.append(MlpBlock(a, b, gates=table.gates(b), chunks=chunks))
    between = _between_layers(model, example_input.to(device), pairs) if pairs else {}
    for block in pairs:
        block.between = between[block[0]]
    blocks = {block[0]: block for block in pairs}
    if not blocks:
        counts = table.counts()
        found = ", ".join(f"{role} x{n}" for role, n in counts.items() if n) or "none"
        raise ModelError(
            f"{type(model).__name__} has no MLP block (Linear mlp_in -> activation -> Linear mlp_out) to prune; "
            f"roles found: {found}"
        )
    return blocks


# --------------------------------------------------------------------------------------------------
# statistics and pruning


@dataclass
class BlockStats:
    """One MLP block: statistics of its hidden neurons (original indexing) and the neurons pruned."""

    mlp_in: str
    mlp_out: str
    mean: torch.Tensor  # float64 [H]
    var: torch.Tensor  # float64 [H], unbiased
    count: int  # samples (tokens / positions) behind mean and var
    score: torch.Tensor | None = None  # the selection score (= var for "variance")
    pruned: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    between: tuple[str, ...] = ()  # per-neuron layers between mlp_in and mlp_out (norm, depthwise conv, GRN)
    gates: tuple[str, ...] = ()  # a gated block's other input layers
    chunks: int = 1  # a gated block's chunks of mlp_in

    @property
    def block(self) -> MlpBlock:
        return MlpBlock(self.mlp_in, self.mlp_out, self.between, self.gates, self.chunks)

    @property
    def width(self) -> int:
        return int(self.mean.numel())

    @property
    def kept(self) -> int:
        return self.width - int(self.pruned.numel())


@dataclass
class VbpStats:
    """What :func:`prune` did: per-block statistics and chosen indices, and the settings used."""

    blocks: dict[str, BlockStats]
    ratio: float = 0.0
    selection: str = "variance"
    compensation: bool = True
    per_layer: bool = False
    min_keep: int = DEFAULT_MIN_KEEP

    @property
    def total_neurons(self) -> int:
        return sum(b.width for b in self.blocks.values())

    @property
    def pruned_neurons(self) -> int:
        return sum(int(b.pruned.numel()) for b in self.blocks.values())

    def removed(self) -> dict:
        """The original indices every layer lost: hidden neurons are outputs of ``mlp_in`` and of the layers between,
        inputs of ``mlp_out`` (as :mod:`edgeprune.surgery.channels` reports a removal)."""
        out: dict = {}
        for b in self.blocks.values():
            idx = sorted(int(i) for i in b.pruned)
            for name in (*b.gates, *b.between):
                out[name] = {"out": idx, "in": idx if name in b.between else []}
            out[b.mlp_in] = {"out": b.block.rows(idx, b.width), "in": []}
            out[b.mlp_out] = {"out": [], "in": idx}
        return out

    def summary(self) -> dict:
        """JSON-ready: settings, counts and per block [kept, width]."""
        return {
            "ratio": self.ratio,
            "selection": self.selection,
            "compensation": self.compensation,
            "per_layer": self.per_layer,
            "min_keep": self.min_keep,
            "total_neurons": self.total_neurons,
            "pruned_neurons": self.pruned_neurons,
            "blocks": {n: [b.kept, b.width] for n, b in self.blocks.items()},
        }


class Statistics(dict):
    """Block name -> :class:`BlockStats`, and ``example``: one input of the model (what its dependency graph is
    traced on when the neurons are removed; None: unknown)."""

    def __init__(self, blocks: Mapping[str, BlockStats], example: torch.Tensor | None = None):
        super().__init__(blocks)
        self.example = example


def collect_statistics(
    model: nn.Module,
    calib_loader,
    *,
    blocks: Mapping[str, tuple[str, str]] | None = None,
    calib_batches: int = 0,
    example_input: torch.Tensor | None = None,
    progress: bool = False,
) -> Statistics:
    """Mean and variance of every MLP block's hidden neurons (the input of ``mlp_out``), in float64.

    ``calib_batches`` = 0 uses every batch of ``calib_loader`` (one pass). The model runs in eval mode.
    ``example_input`` (found from the model or the loader when ``blocks`` is None) is kept with the statistics:
    the neurons are removed through the dependency graph traced on it (by hand without it; the same weights).
    """
    if isinstance(calib_batches, bool) or not isinstance(calib_batches, int) or calib_batches < 0:
        raise ConfigError(f"calib_batches must be an integer >= 0 (0 = one full pass), got {calib_batches!r}")
    if blocks is None:
        if example_input is None:
            example_input = example_input_for(model, calib_loader)
        blocks = find_mlp_blocks(model, example_input)
    consumers = {name: model.get_submodule(out_name) for name, (_, out_name) in blocks.items()}
    moments: dict[str, RunningMoments] = input_statistics(
        model, consumers, calib_loader, max_batches=calib_batches, expected_input=_expected_input(model),
        progress=progress, description="VBP statistics",
    )
    return Statistics({
        name: BlockStats(in_name, out_name, moments[name].mean, moments[name].variance, moments[name].count,
                         between=getattr(blocks[name], "between", ()), gates=getattr(blocks[name], "gates", ()),
                         chunks=getattr(blocks[name], "chunks", 1))
        for name, (in_name, out_name) in blocks.items()
    }, example_input)


def _scores(model: nn.Module, blocks: Mapping[str, BlockStats], selection: str, seed: int) -> dict[str, torch.Tensor]:
    if selection == "variance":
        return {n: b.var for n, b in blocks.items()}
    if selection == "magnitude":
        return {n: magnitude_scores(model, b.block) for n, b in blocks.items()}
    return random_scores({n: b.width for n, b in blocks.items()}, seed)


def prune_with_statistics(
    model: nn.Module,
    statistics: Mapping[str, BlockStats],
    ratio: float,
    *,
    compensation: bool = True,
    selection: str = "variance",
    per_layer: bool = False,
    min_keep: int = DEFAULT_MIN_KEEP,
    seed: int = 0,
) -> tuple[nn.Module, VbpStats]:
    """Like :func:`prune`, with statistics already collected on ``model`` (reuse them across ratios)."""
    _check_settings(ratio, {"selection": selection})
    for name, b in statistics.items():
        width = hidden_width(model.get_submodule(b.mlp_in), model.get_submodule(b.mlp_out), name, b.chunks)
        if width != b.width:
            raise ModelError(f"statistics of block {name!r} cover {b.width} neurons but the model has {width}; "
                             f"collect them on this (unpruned) model")
    scores = _scores(model, statistics, selection, seed)
    pruned = select_lowest(scores, ratio, per_layer=per_layer, min_keep=min_keep)
    new = copy.deepcopy(model)
    pairs, between = {n: b.block for n, b in statistics.items()}, {n: b.between for n, b in statistics.items()}
    check_blocks(new, pairs, pruned, between)
    if compensation:
        fold_block_means(new, pairs, pruned, {n: b.mean for n, b in statistics.items()})
    remove_hidden(new, pairs, pruned, between, getattr(statistics, "example", None))
    blocks = {n: BlockStats(b.mlp_in, b.mlp_out, b.mean, b.var, b.count, scores[n], pruned[n], b.between, b.gates,
                            b.chunks) for n, b in statistics.items()}
    return new, VbpStats(blocks, float(ratio), selection, bool(compensation), bool(per_layer), int(min_keep))


def _check_settings(ratio: float, options: dict) -> None:
    """``ratio`` and :func:`prune_with_statistics`' keyword ``options``, checked before any statistics are collected:
    a TypeError for a keyword it does not take, a one-line ConfigError for a bad value."""
    check_fraction("ratio", ratio)
    inspect.signature(prune_with_statistics).bind_partial(**options)
    selection = options.get("selection")
    if "selection" in options and selection not in SELECTIONS:
        raise ConfigError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")


def prune(model: nn.Module, calib_loader, ratio: float, *, calib_batches: int = 0, example_input: torch.Tensor | None = None,
          progress: bool = False, **options) -> tuple[nn.Module, VbpStats]:
    """Variance-Based Pruning of ``model``'s MLP hidden neurons; returns (pruned deep copy, stats).

    ``calib_loader`` yields ``(x, y)`` batches (or tensors); ``calib_batches`` = 0 means all of them.
    ``options`` are the switches of :func:`prune_with_statistics` (``compensation``, ``selection``, ``per_layer``,
    ``min_keep``, ``seed``), with its defaults where not given.
    The lowest ``ratio`` of all MLP hidden neurons (by count, ranked globally; per block with
    ``per_layer=True``) by ``selection`` score ("variance" = the paper; "magnitude", "random" for
    ablations) are removed; every block keeps at least ``min_keep``. With ``compensation`` their means
    are folded into the next layer's bias. ``model`` itself is not changed.
    """
    _check_settings(ratio, options)
    if example_input is None:
        example_input = example_input_for(model, calib_loader)
    blocks = find_mlp_blocks(model, example_input)
    statistics = collect_statistics(model, calib_loader, blocks=blocks, calib_batches=calib_batches,
                                    example_input=example_input, progress=progress)
    return prune_with_statistics(model, statistics, ratio, **options)
