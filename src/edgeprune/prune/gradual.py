"""Gradual pruning (Zhu & Gupta 2017): per-layer targets reached along a cubic schedule while fine-tuning.

A candidate's method decides the final keep-masks (per layer: which and how many weights go). With
``schedule="oneshot"`` they are applied before fine-tuning. With ``schedule="gradual"`` fine-tuning starts
from the dense weights and :class:`GradualMasks` prunes at ``updates`` evenly spaced optimizer steps up to
``end`` (a fraction of all steps): at update j of n, layer l has pruned

    k_j = floor(K_l · (1 − (1 − j/n)³))        (K_l: the final mask's pruned count of layer l)

weights, so at the end step (j = n) every layer holds exactly its final count; afterwards the masks stay
fixed (recovery training). Masks only grow: a pruned weight stays pruned. Which weights go at each update:

* ``reselect=True`` (the magnitude criterion, cheap to re-evaluate): the lowest current |w| of the layer,
  as in Zhu & Gupta — the final mask follows the weights as they adapt;
* ``reselect=False`` (criteria computed once from data: gradient, product, SNIP, GraSP, random): only
  weights of the method's final pruned set, lowest current |w| first — the final mask IS the method's.

The training loop (:func:`edgeprune.train.fit`) calls :meth:`begin` once and :meth:`update` after every
optimizer step; selection and early stopping there only count epochs that end after the final update.
"""

from __future__ import annotations

from typing import Literal

import pydantic
import torch
from torch import nn

from edgeprune.config import Config
from edgeprune.errors import ConfigError
from edgeprune.prune.masks import Masks, prune_lowest

SCHEDULES = ("oneshot", "gradual")
DEFAULT = "oneshot"  # measured: docs/mix_and_match.md, "Default schedule"


class Schedule(Config):
    """How a masked candidate reaches its masks: at once, or along the cubic schedule."""

    kind: Literal["oneshot", "gradual"] = DEFAULT
    end: float = pydantic.Field(0.6, gt=0, le=1)  # fraction of the fine-tune's optimizer steps
    updates: int = pydantic.Field(30, gt=0)  # pruning steps up to ``end``


def schedule_of(value) -> Schedule:
    """A :class:`Schedule` from ``"oneshot"``, ``"gradual"``, a dict of its fields or a Schedule."""
    if isinstance(value, Schedule):
        return value
    if value is None:
        return Schedule()
    if isinstance(value, str):
        if value not in SCHEDULES:
            raise ConfigError(f"schedule {value!r} is not allowed; allowed: {', '.join(SCHEDULES)} (or a dict with kind, end, updates)")
        return Schedule(kind=value)
    if isinstance(value, dict):
        return Schedule.build(value)
    raise ConfigError(f"schedule must be 'oneshot', 'gradual' or a dict, got {type(value).__name__}")


def cubic(progress: float) -> float:
    """Fraction of the final pruned count reached at ``progress`` in [0, 1]: 1 − (1 − p)³."""
    p = min(max(progress, 0.0), 1.0)
    return 1.0 - (1.0 - p) ** 3


class GradualMasks:
    """The masks of one candidate along the cubic schedule (see the module docstring)."""

    def __init__(self, final: Masks, *, end: float = 0.6, updates: int = 30, reselect: bool = False):
        self.final = {n: m.detach().bool().cpu() for n, m in final.items()}
        self.end, self.updates, self.reselect = float(end), int(updates), bool(reselect)
        self.counts = {n: int(m.numel() - m.count_nonzero()) for n, m in self.final.items()}
        self.masks: Masks = {n: torch.ones_like(m) for n, m in self.final.items()}
        self.steps: dict[int, int] = {}  # optimizer step -> update index j (1..n)
        self.end_step = 0

    def begin(self, total_steps: int) -> Masks:
        """Plan the updates over ``total_steps`` optimizer steps; returns the starting (dense) masks."""
        self.end_step = max(1, round(self.end * total_steps))
        n = min(self.updates, self.end_step)
        self.steps = {max(1, round(j * self.end_step / n)): j for j in range(1, n + 1)}
        self.n = n
        self.masks = {k: torch.ones_like(m) for k, m in self.final.items()}
        return self.masks

    def finished(self, step: int) -> bool:
        """True once the final update (at ``end_step``) has been applied."""
        return step >= self.end_step

    @torch.no_grad()
    def update(self, step: int, model: nn.Module) -> Masks | None:
        """New masks if ``step`` (optimizer steps taken) is an update step, else None."""
        j = self.steps.get(step)
        if j is None:
            return None
        return self._at(cubic(j / self.n), model, last=j == self.n)

    @torch.no_grad()
    def complete(self, model: nn.Module) -> Masks:
        """The final masks now (a fit cut short before its end step)."""
        return self._at(1.0, model, last=True)

    def _at(self, fraction: float, model: nn.Module, last: bool) -> Masks:
        params = dict(model.named_parameters())
        out: Masks = {}
        for name, final in self.final.items():
            k = self.counts[name] if last else int(fraction * self.counts[name])
            w = params[name].detach().abs().float().cpu().reshape(-1)
            score = w.clone()
            if not self.reselect:
                score[final.reshape(-1)] = float("inf")  # only the method's pruned set may go
            score[~self.masks[name].reshape(-1)] = -1.0  # what is pruned stays pruned
            out[name] = prune_lowest(score, k).reshape(final.shape)
        self.masks = out
        return out
