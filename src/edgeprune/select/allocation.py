"""Latency-aware allocation: remove the channels of least importance per millisecond saved (HALP's greedy knapsack
over a latency table, Shen et al. 2022), within each layer's range.

    kept = allocate(table, ops, structure, model, importance, ceilings, limit_ms, round_to=8)

Every coupled group's channels are ranked by importance: for each layer the group's channels pass through (its
members' outputs, its readers' inputs), the per-weight scores summed per channel, summed over the layers. First-order
Taylor scores (``|w * dL/dw|``) compare across layers as they are; weight magnitudes are divided by each layer's
mean first, so layers of any fan-in compare, and a channel of a residual stream that seven layers read counts about
seven times one that a single convolution makes and the next reads. Starting from the whole model, each step removes one ``round_to`` block of channels from
the group where the importance removed per millisecond the table says it saves is least, until the table predicts
``limit_ms`` or every group reached its ceiling.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from edgeprune.select.latency_table import LatencyTable, widths_from
from edgeprune.surgery.structure import StructurePlan


def channel_importance(structure: StructurePlan, model: nn.Module, scores: dict | None,
                       relative: bool = True) -> dict[int, np.ndarray]:
    """Group index -> each channel's importance: the sum over the layers it passes through of its per-channel score
    (``scores``: "<module>.weight" -> per-weight scores; None: |w|), ``relative``: divided by that layer's mean first.
    Protected groups are left out."""
    modules = dict(model.named_modules())
    out = {}
    for g, (members, consumers) in enumerate(zip(structure.groups, structure.consumers)):
        if any(m in structure.protected for m in members):
            continue
        channels = structure.channels[members[0]]
        total = torch.zeros(channels)
        for names, dim in ((members, 0), (consumers, 1)):
            for name in dict.fromkeys(names):
                layer = _per_channel(modules.get(name), scores, name, dim=dim, channels=channels)
                total += layer / layer.mean() if relative and layer.mean() > 0 else layer
        out[g] = total.numpy() if total.sum() > 0 else np.ones(channels)
    return out


def _per_channel(module, scores, name: str, dim: int, channels: int) -> torch.Tensor:
    """The score of ``module``'s weight summed over every dimension but ``dim`` (zeros if it is not ``channels`` wide,
    e.g. a depthwise weight's input dimension or a linear layer reading a flattened map)."""
    weight = getattr(module, "weight", None)
    if weight is None or weight.dim() < 2 or getattr(module, "transposed", False):
        return torch.zeros(channels)
    score = (scores or {}).get(f"{name}.weight")
    score = weight.detach().abs() if score is None else score.detach().abs()
    if score.shape[dim] != channels:
        return torch.zeros(channels)
    return score.transpose(0, dim).reshape(channels, -1).sum(1).float()


def allocate(table: LatencyTable, ops: dict, structure: StructurePlan, model: nn.Module,
             importance: dict[int, np.ndarray], ceilings: dict[int, float], limit_ms: float, round_to: int,
             removed: list[str] = ()) -> dict[int, int]:
    """Group index -> channels kept: blocks of ``round_to`` channels removed greedily, least importance per predicted
    millisecond saved first, until the table predicts at most ``limit_ms`` (or no group may lose more: each keeps at
    least ``(1 - ceilings[g])`` of its channels and ``round_to``)."""
    channels = {g: structure.channels[structure.groups[g][0]] for g in importance}
    kept = dict(channels)
    floors = {g: max(min(round_to, c), math.ceil(c * (1 - ceilings.get(g, 0.0)))) for g, c in channels.items()}
    ranked = {g: np.cumsum(np.sort(v)) for g, v in importance.items()}  # removed importance, least first

    def predict(state: dict[int, int]) -> float:
        members = {m: k for g, k in state.items() for m in structure.groups[g]}
        return table.predict(widths_from(ops, structure, members, {}, model, removed))

    now = predict(kept)
    while now > limit_ms:
        best = None
        for g, k in kept.items():
            step = (k - 1) // round_to * round_to if round_to > 1 else k - 1
            if step < floors[g]:
                continue
            after = predict({**kept, g: step})
            saved = now - after
            cost = ranked[g][channels[g] - step - 1] - (ranked[g][channels[g] - k - 1] if k < channels[g] else 0.0)
            value = cost / saved if saved > 1e-9 else math.inf
            if best is None or value < best[0]:
                best = (value, g, step, after)
        if best is None or best[0] == math.inf and best[3] >= now:
            break
        _, g, kept[g], now = best
    return kept


__all__ = ["channel_importance", "allocate"]
