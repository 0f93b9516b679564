"""What Mix-and-Match and its structured sibling share: the criteria and strategies a user may name, their
common options, and turning calibrated strategies into candidates (one per strategy × criterion × seed)."""

from __future__ import annotations

import warnings
from typing import Literal

import pydantic
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import strategies as strategies_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, Config
from edgeprune.errors import ConfigError
from edgeprune.methods.base import Candidate

CRITERIA = ("magnitude", "gradient", "product")
Criterion = Literal["magnitude", "gradient", "product"]
Strategy = Literal["min", "max", "balanced", "p30", "p50", "p70", "p90", "param_prop", "late_heavy", "early_heavy",
                   "mlp_heavy", "attn_aggressive"]


class ScoredOptions(Config):
    """Options of every Mix-and-Match flavour: criteria, strategies, range rules, calibration batches."""

    criteria: list[Criterion] = pydantic.Field(
        list(CRITERIA), min_length=1,
        description="Weight scores, each its own candidates: magnitude |w|, gradient |dL/dw|, product |w·dL/dw|.")
    strategies: list[Strategy] | None = pydantic.Field(
        None, min_length=1, description="Per-layer strategies to try (default: the model family's ten).")
    range_rules: dict = pydantic.Field(
        {}, description="Per-role sparsity ranges replacing the defaults (edgeprune.ranges.RangeRules), a mapping "
                        "such as {classifier_small: [0, 0.2]}.")
    calib_batches: int = pydantic.Field(10, ge=1, le=MAX_BATCHES, description="Calibration batches for the gradient scores.")
    calib_batch_size: int = pydantic.Field(32, ge=1, le=MAX_BATCH_SIZE, description="Batch size of the calibration batches.")

    @pydantic.field_validator("range_rules")
    @classmethod
    def _rules_are_valid(cls, value: dict) -> dict:
        ranges_lib.RangeRules.build(value)  # a one-line ConfigError now, not after the input model is trained
        return value


def check_prunable(roles: roles_lib.RoleTable, model: nn.Module) -> None:
    if not roles.prunable():
        raise ConfigError(f"model {type(model).__name__} has no prunable layer (conv or linear weight)")


def strategy_candidates(built: dict[str, dict], names, criteria, budget, seeds, *, setting: dict | None = None,
                        tag: str = "") -> list[Candidate]:
    """One candidate per (strategy, criterion, seed) from ``built`` (strategy -> per-layer values at ``budget``);
    strategies that came out identical are trained once, under the first name, with a warning naming them."""
    same = strategies_lib.duplicates(built)
    groups = sorted({tuple(sorted([n, *same[n]])) for n in same} - {("balanced", "p50")})  # equal by definition
    if groups:
        warnings.warn(f"at budget {budget} these strategies give identical per-layer sparsities and are "
                      f"trained once each group: {'; '.join(' = '.join(g) for g in groups)} (the layer "
                      "ranges are too alike; see range_rules)", UserWarning, stacklevel=3)
    plan, seen = [], set()
    for strategy in names:
        if strategy in seen:
            continue
        aliases = [a for a in same.get(strategy, []) if a in built]
        seen.update([strategy, *aliases])
        for criterion in criteria:
            chosen = {"criterion": criterion, "strategy": strategy, "aliases": aliases, "sparsities": built[strategy],
                      **(setting or {})}
            plan += [Candidate(f"mam-{criterion}-{strategy}{tag}-b{budget:g}-s{s}", budget, s, chosen) for s in seeds]
    return plan
