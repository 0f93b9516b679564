"""Mix-and-Match: weights scored once per criterion, ten per-layer strategies from the layers' roles.

Each candidate is one (criterion, strategy) pair calibrated to the budget (global sparsity of the
prunable weights); its exact per-layer masks are kept while the shared runner fine-tunes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import pydantic
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, Config
from edgeprune.errors import ConfigError
from edgeprune.methods.base import Candidate, Decision, Method, register
from edgeprune.prune.masks import MaskBuilder, apply_masks

CRITERIA = ("magnitude", "gradient", "product")
Criterion = Literal["magnitude", "gradient", "product"]
Strategy = Literal["min", "max", "balanced", "p30", "p50", "p70", "p90", "param_prop", "late_heavy", "early_heavy"]


class Options(Config):
    criteria: list[Criterion] = list(CRITERIA)
    strategies: list[Strategy] = list(strategies_lib.NAMES)
    range_rules: dict = {}
    calib_batches: int = pydantic.Field(10, le=MAX_BATCHES)
    calib_batch_size: int = pydantic.Field(32, le=MAX_BATCH_SIZE)

    @pydantic.field_validator("range_rules")
    @classmethod
    def _rules_are_valid(cls, value: dict) -> dict:
        ranges_lib.RangeRules.build(value)  # a one-line ConfigError now, not after the input model is trained
        return value


@dataclass
class State:
    roles: roles_lib.RoleTable
    ranges: dict
    builders: dict[str, MaskBuilder]


def check_prunable(roles: roles_lib.RoleTable, model: nn.Module) -> None:
    if not roles.prunable():
        raise ConfigError(f"model {type(model).__name__} has no prunable layer (conv or linear weight)")


@register
class MixAndMatch(Method):
    name = "mix_and_match"
    summary = "ten per-layer strategies from layer roles × criteria (magnitude, gradient, product); unstructured"
    default_budget = 0.8
    Options = Options

    def check(self, model, example):
        check_prunable(roles_lib.classify(model, example), model)

    def prepare(self, model, data, example):
        opts = self.options
        if not opts.criteria or not opts.strategies:
            raise ConfigError("mix_and_match needs at least one criterion and one strategy")
        roles = roles_lib.classify(model, example)
        check_prunable(roles, model)
        ranges = ranges_lib.rules(roles, ranges_lib.RangeRules.build(opts.range_rules))
        needs_data = any(c != "magnitude" for c in opts.criteria)
        batches = scores_lib.calibration_batches(data.train, opts.calib_batches, opts.calib_batch_size) if needs_data else None
        builders = {c: MaskBuilder(scores_lib.compute(c, model, None if c == "magnitude" else batches))
                    for c in opts.criteria}
        return State(roles, ranges, builders)

    def candidates(self, state: State, budgets, seeds):
        plan = []
        for budget in budgets:
            built = {s: strategies_lib.build(s, state.ranges, state.roles, budget) for s in self.options.strategies}
            same = strategies_lib.duplicates(built)
            seen: set[str] = set()
            for strategy in self.options.strategies:
                if strategy in seen:
                    continue
                aliases = [a for a in same.get(strategy, []) if a in built]
                seen.update([strategy, *aliases])
                for criterion in self.options.criteria:
                    setting = {"criterion": criterion, "strategy": strategy, "aliases": aliases,
                               "sparsities": built[strategy]}
                    plan += [Candidate(f"mam-{criterion}-{strategy}-b{budget:g}-s{s}", budget, s, setting) for s in seeds]
        return plan

    def prune(self, state: State, model, candidate):
        setting = candidate.setting
        masks = state.builders[setting["criterion"]].layerwise(setting["sparsities"])
        pruned = copy.deepcopy(model)
        apply_masks(pruned, masks)
        info = {"criterion": setting["criterion"], "strategy": setting["strategy"], "aliases": setting["aliases"]}
        return Decision(pruned, masks, info)

