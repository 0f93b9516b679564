"""Reconvene's Pruning Sensitivity Evaluator (PSE) on a PaI mask.

:func:`evaluate_sensitivity` compares each conv layer's UPaI sparsity with the average (by default the
unweighted mean of the conv layers' sparsities; ``weighted=True``: the parameter-weighted one, ``p``). Layers
pruned harder than the average are *insensitive*: :func:`edgeprune.prune.rectify.rectify` removes their
channels physically.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Sequence

from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.prune.masks import Masks

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def conv_weight_names(model: nn.Module) -> list[str]:
    """Parameter names of the conv weights (the subject of the structured step), in module order."""
    return [f"{n}.weight" for n, m in model.named_modules() if n and isinstance(m, CONV_TYPES)]


@dataclass
class Sensitivity:
    """PSE verdict: the average the layers are compared with and each conv layer's sparsity."""

    average: float
    weighted: bool
    sparsity: dict[str, float]  # conv weight name -> fraction pruned by the UPaI mask
    insensitive: dict[str, bool]  # conv weight name -> pruned harder than the average

    @property
    def insensitive_layers(self) -> list[str]:
        return [n for n, v in self.insensitive.items() if v]


def evaluate_sensitivity(masks: Masks, conv_layers: Sequence[str], *, weighted: bool = False) -> Sensitivity:
    """Classify each conv layer in ``conv_layers`` (weight names) against the global average sparsity.

    ``weighted=True``: the average is the parameter-weighted sparsity of ALL masked weights (conv and
    linear), i.e. the global target ``p``. ``weighted=False``: the unweighted mean of the conv layers'
    sparsities. A layer is insensitive when its sparsity is strictly greater than the average.
    """
    missing = [n for n in conv_layers if n not in masks]
    if missing:
        raise ConfigError(f"no mask for conv layer {missing[0]!r}")
    if not conv_layers:
        raise ConfigError("no conv layer to evaluate")
    kept = {n: int(m.count_nonzero()) for n, m in masks.items()}  # counted once: masks can hold 10^7 entries
    per_layer = {n: 1.0 - kept[n] / masks[n].numel() for n in conv_layers}
    if weighted:
        total = sum(m.numel() for m in masks.values())
        average = 1.0 - sum(kept.values()) / total
    else:
        average = statistics.fmean(per_layer.values())
    # a tiny tolerance so a layer at exactly the average (up to float rounding) counts as sensitive
    insensitive = {n: s > average + 1e-12 for n, s in per_layer.items()}
    return Sensitivity(average=average, weighted=weighted, sparsity=per_layer, insensitive=insensitive)


__all__ = ["CONV_TYPES", "Sensitivity", "conv_weight_names", "evaluate_sensitivity"]
