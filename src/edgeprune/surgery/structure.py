"""What structured pruning needs to know of a model, found once: its coupled groups, protected layers and heads.

:func:`plan` inspects the model once: its coupled groups (:mod:`edgeprune.surgery.groups`), the layers producing
the model's output (never pruned), the attention layers whose heads can go (fused ``qkv`` or split q/k/v, found by
:mod:`edgeprune.surgery.heads`), and the patch embedding's residual stream (kept). A model torch-pruning cannot trace
as a whole is planned inside its blocks that trace alone (:mod:`edgeprune.surgery.blocks`).
:func:`group_fractions` gives every coupled group ONE fraction: the weight-count-weighted mean of its members'
fractions (a residual stream shrinks as a whole).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from edgeprune.surgery import blocks as blocks_lib
from edgeprune.surgery import heads as heads_lib
from edgeprune.surgery.groups import traced
from edgeprune.surgery.search import Unbounded

Scores = dict[str, torch.Tensor]  # "<module>.weight" -> per-weight score of the unpruned weight's shape


@dataclass
class StructurePlan:
    """What structured pruning needs to know of a model, found once on the unpruned model."""

    groups: list[list[str]]  # module names whose output channels are coupled (one list per group)
    channels: dict[str, int]  # module name -> output channels
    numels: dict[str, int]  # module name -> weight count
    protected: set[str] = field(default_factory=set)  # produce the model output or its embedding stream
    # first projection (fused qkv, or the query Linear) -> (attention module, heads); see surgery.heads
    heads: dict[str, tuple[str, int]] = field(default_factory=dict)
    retry: int = 0  # the first fallback retry that worked (later prune_channels calls start there; 0: none needed)
    skipped: list[str] = field(default_factory=list)  # what plan() already kept whole (one line each)
    # block name -> its input, when torch-pruning cannot trace the whole model (surgery.blocks); empty otherwise
    blocks: dict[str, torch.Tensor] = field(default_factory=dict)
    consumers: list[list[str]] = field(default_factory=list)  # per group: the layers reading its channels
    residual: set[str] = field(default_factory=set)  # members of groups whose channels are a residual stream
    # member -> the equal parts a grouped conv or GroupNorm splits its group's channels into (absent: 1)
    channel_groups: dict[str, int] = field(default_factory=dict)


class Widths(dict):
    """Module name -> output channels after pruning (every group member); ``skipped``: one line per part
    of the model kept whole because torch-pruning failed on the full plan (empty when it did not); ``removed``: the
    original indices every touched module lost (``{name: {"out": [...], "in": [...]}}``, what reconstruction needs)."""

    def __init__(self, widths: dict[str, int], skipped: list[str] | None = None, removed: dict | None = None):
        super().__init__(widths)
        self.skipped = list(skipped or [])
        self.removed = dict(removed or {})

def _traced(model: nn.Module, example: torch.Tensor):
    # a layer whose own group runs away (YOLO11's attention reshaping qkv by its heads) or whose search runs past its
    # time limit (iFormer's gated value convs) is kept whole
    return traced(model, example, "structured pruning", failing=(ZeroDivisionError, Unbounded))


def plan(model: nn.Module, example: torch.Tensor, keep_embedding: set[str] | frozenset = frozenset()) -> StructurePlan:
    """The coupled groups, protected layers and attention heads of ``model`` (traced once on ``example``).

    ``keep_embedding``: module names (e.g. the patch embedding) whose whole coupled group keeps its width.
    A model torch-pruning cannot trace as a whole is planned inside its blocks that trace alone
    (:mod:`edgeprune.surgery.blocks`; no attention heads then), or refused if none has a prunable group.
    """
    parts, note = blocks_lib.whole_or_blocks(model, example, _traced)
    skipped = [note] if note else []
    modules = dict(model.named_modules())
    groups, consumers, protected, channels, failed, residual, split = [], [], set(), {}, [], set(), {}
    for prefix, (_, (graph, part)) in parts.items():
        inner = dict(modules[prefix].named_modules())
        for g in part:
            members = [f"{prefix}.{m}" if prefix else m for m in g.members]
            groups.append(members)
            consumers.append([f"{prefix}.{m}" if prefix else m for m in g.consumers])
            channels.update({full: int(graph.get_out_channels(inner[m])) for full, m in zip(members, g.members)})
            if g.protected or keep_embedding & set(members):
                protected.update(members)
            if g.residual:
                residual.update(members)
            if g.channel_groups > 1:
                split.update(dict.fromkeys(members, g.channel_groups))
            if g.failed:
                failed.append((members[0], g.failed))
    if failed:
        skipped.append(f"{len(failed)} layer(s) kept whole, torch-pruning fails to find their coupled channels "
                       f"(first: {failed[0][0]}, {failed[0][1]})")
    whole = "" in parts
    return StructurePlan(
        groups=groups, consumers=consumers, channels=channels, numels={n: modules[n].weight.numel() for n in channels}, protected=protected,
        heads={k: v for k, v in heads_lib.find(model).items() if k not in protected} if whole else {},
        skipped=skipped, residual=residual, channel_groups=split, blocks={} if whole else {name: block_input for name, (block_input, _) in parts.items()},
    )


def group_fractions(structure: StructurePlan, fractions: dict[str, float]) -> dict[str, float]:
    """Module name -> the fraction of output channels its group loses (members share one, weighted by size).

    ``fractions`` maps Conv/Linear module names to the strategy's fraction; groups none of whose members is
    named, and protected groups, keep every channel (no entry).
    """
    out = {}
    for members in structure.groups:
        named = [m for m in members if m in fractions]
        if not named or any(m in structure.protected for m in members):
            continue
        weight = sum(structure.numels[m] for m in named)
        value = sum(structure.numels[m] * float(fractions[m]) for m in named) / max(weight, 1)
        for m in members:
            out[m] = value
    return out


def kept_channels(channels: int, fraction: float, round_to: int, groups: int = 1) -> int:
    """The output channels a group of ``channels`` keeps when it loses ``fraction``: ``int(channels * (1 - fraction))``
    rounded down to a multiple of ``round_to`` and of the ``groups`` equal parts a grouped conv or GroupNorm splits
    it into, and at least one such multiple (all channels when that multiple is more than the group has)."""
    unit = min(math.lcm(max(round_to, 1), groups), channels)
    count = int(channels * (1 - min(max(float(fraction), 0.0), 1.0)))
    return max(count - count % unit, unit)


def widths_of(model: nn.Module, structure: StructurePlan) -> dict[str, int]:
    """Module name -> its output channels now, for every member of ``structure``'s groups."""
    modules = dict(model.named_modules())
    out = {}
    for members in structure.groups:
        for m in members:
            w = modules[m].weight
            out[m] = int(w.shape[1] if getattr(modules[m], "transposed", False) else w.shape[0])
    return out


def fractions_from_params(vector: dict[str, float]) -> dict[str, float]:
    """A strategy vector keyed by "<module>.weight" -> the same keyed by module name."""
    return {(k[: -len(".weight")] if k.endswith(".weight") else k): v for k, v in vector.items()}


def removed_share(before: dict[str, int], after: dict[str, int]) -> float:
    """Fraction of the listed layers' output channels removed (for summaries)."""
    total = sum(before.values())
    return 1.0 - sum(after.get(k, v) for k, v in before.items()) / total if total else 0.0
