"""Latency-aware allocation: remove the channels of least importance per millisecond saved (HALP's greedy knapsack
over a latency table, Shen et al. 2022), within each layer's range.

    kept = allocate(table, ops, structure, model, importance, ceilings, limit_ms, round_to=8).channels

Every coupled group's channels are ranked by importance: for each layer the group's channels pass through (its
members' outputs, its readers' inputs), the per-weight scores summed per channel, summed over the layers. First-order
Taylor scores (``|w * dL/dw|``) compare across layers as they are; weight magnitudes are divided by each layer's
mean first, so layers of any fan-in compare, and a channel of a residual stream that seven layers read counts about
seven times one that a single convolution makes and the next reads. Starting from the whole model, each step removes one ``round_to`` block of channels from
the group where the importance removed per millisecond the table says it saves is least, until the table predicts
``limit_ms`` or every group reached its ceiling. Residual blocks may be units too: a block goes whole when the
importance its channels still keep, per millisecond its operators take, is the least.
"""

from __future__ import annotations

import math
from typing import NamedTuple

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


def head_importance(heads: dict, model: nn.Module, scores: dict | None, relative: bool = True) -> dict[str, np.ndarray]:
    """Attention module -> each head's importance: the scores of its rows in the q/k/v projections (a fused ``qkv``
    laid out as [3, heads, head dim]) and of its columns in the output projection (``heads``: as
    :func:`edgeprune.select.latency_table.kept_heads` gives them for no pruning)."""
    modules = dict(model.named_modules())
    out = {}
    for attn, (names, _, count) in heads.items():
        total = torch.zeros(count)
        readers = [f"{attn}.{n}" for n, m in modules[attn].named_children()
                   if isinstance(m, nn.Linear) and f"{attn}.{n}" not in names]
        for name, dim in [*((n, 0) for n in names), *((n, 1) for n in readers)]:
            module = modules[name]
            score = (scores or {}).get(f"{name}.weight")
            score = (module.weight.detach() if score is None else score.detach()).abs().float()
            per_row = score.sum(1) if dim == 0 else score.sum(0)
            parts = 3 if len(names) == 1 and dim == 0 else 1  # q, k and v rows of a fused projection
            if per_row.numel() % (parts * count):
                continue
            per_head = per_row.reshape(parts, count, -1).sum((0, 2))
            total += per_head / per_head.mean() if relative and per_head.mean() > 0 else per_head
        out[attn] = total.numpy()
    return out


class Allocation(NamedTuple):
    channels: dict  # group index -> channels kept
    heads: dict  # attention -> heads kept
    ms: float  # the table's milliseconds for them
    blocks: list  # residual blocks removed


def internal_units(blocks: list[str], structure: StructurePlan, units, heads: dict) -> dict[str, list]:
    """Block -> the allocation units (group indices, attention names) wholly inside it: what removing the block takes
    with it. Blocks with none are left out (nothing would price their removal)."""
    out = {}
    for block in blocks:
        found = [u for u in units if _inside(block, heads[u][0] if u in heads else
                                             [*structure.groups[u], *structure.consumers[u]])]
        if found:
            out[block] = found
    return out


def _inside(block: str, names) -> bool:
    return bool(names) and all(n.startswith(f"{block}.") for n in names)


def allocate(table: LatencyTable, ops: dict, structure: StructurePlan, model: nn.Module,
             importance: dict, ceilings: dict, limit_ms: float, round_to: int, removed: list[str] = (),
             heads: dict | None = None, blocks: dict[str, list] | None = None, max_blocks: int = 0) -> Allocation:
    """Blocks of ``round_to`` channels (or one head) removed greedily, least importance per predicted millisecond saved
    first (blocks the table predicts no saving for last), until the table predicts at most ``limit_ms`` (or nothing may
    lose more: each unit keeps at least ``(1 - ceilings[unit])`` of it, and a group ``round_to`` channels, an
    attention one head). ``importance``: group index or attention name -> per channel / head
    importance; ``heads``: :func:`edgeprune.select.latency_table.kept_heads` for no pruning.

    ``blocks`` (:func:`internal_units`): residual blocks that may go whole, at most ``max_blocks`` of them, each priced
    at the importance its units still keep and saving every operator it runs (what a block costs beyond its channels:
    the per-operator part of the time, which thinning never removes)."""
    heads, blocks = heads or {}, blocks or {}
    totals = {u: (heads[u][2] if u in heads else structure.channels[structure.groups[u][0]]) for u in importance}
    steps = {u: 1 if u in heads else round_to for u in importance}
    kept = dict(totals)
    floors = {u: max(min(steps[u], c), math.ceil(c * (1 - ceilings.get(u, 0.0)))) for u, c in totals.items()}
    ranked = {u: np.cumsum(np.sort(v)) for u, v in importance.items()}  # removed importance, least first
    dropped, frozen = [], set()

    def removed_importance(u, k: int) -> float:
        return ranked[u][totals[u] - k - 1] if k < totals[u] else 0.0

    def widths(state: dict, gone: list) -> dict:
        channels = {m: k for u, k in state.items() if u not in heads for m in structure.groups[u]}
        attention = {a: (heads[a][0], state[a], heads[a][2]) for a in heads if a in state}
        return widths_from(ops, structure, channels, attention, model, [*removed, *gone])

    def value_of(unit):
        """(value, step) of removing ``unit``'s next step (a block: all of it, step None); None if it may not."""
        if unit in blocks:
            if unit in dropped or len(dropped) >= max_blocks:
                return None
            saved = now - table.predict(widths(kept, [*dropped, unit]))
            cost = sum(ranked[u][-1] - removed_importance(u, kept[u]) for u in blocks[unit])
            step = None
        else:
            step = (kept[unit] - 1) // steps[unit] * steps[unit] if steps[unit] > 1 else kept[unit] - 1
            if unit in frozen or step < floors[unit]:
                return None
            saved = now - table.predict(widths({**kept, unit: step}, dropped))
            cost = removed_importance(unit, step) - removed_importance(unit, kept[unit])
        # a step the table sees no saving in ranks last, least importance first: a table fitted on noisy
        # timings can be flat where the device is not, and the confirming timing decides
        return (cost / saved if saved > 1e-9 else math.inf, cost), step

    # the table is additive over layers: a step changes the time of the layers it touches only, so a unit's saving
    # stays valid until a step of a unit sharing a layer with it (an exact cache; a block's removal resets it)
    full = widths(kept, [])

    def touched(state: dict, gone: list) -> set:
        changed = widths(state, gone)
        return {n for n in {*full, *changed} if full.get(n) != changed.get(n)}

    layers = {u: touched({**kept, u: floors[u]}, []) for u in kept}
    layers.update({b: touched(kept, [b]) for b in blocks})
    order = [*kept, *blocks]
    now = table.predict(widths(kept, dropped))
    values, dirty = {}, set(order)
    while now > limit_ms:
        values.update({unit: value_of(unit) for unit in dirty})
        best = None
        for unit in order:
            if values[unit] is not None and (best is None or values[unit][0] < values[best][0]):
                best = unit
        if best is None:
            break
        step = values[best][1]
        if step is None:
            dropped.append(best)
            frozen.update(blocks[best])
            dirty = set(order)
        else:
            kept[best] = step
            dirty = {unit for unit in order if layers[unit] & layers[best]} | {best}
        now = table.predict(widths(kept, dropped))
    return Allocation({u: k for u, k in kept.items() if u not in heads}, {u: k for u, k in kept.items() if u in heads},
                      now, dropped)


__all__ = ["channel_importance", "head_importance", "internal_units", "allocate", "Allocation"]
