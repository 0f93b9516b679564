"""Mix-and-Match: weights scored once per criterion, ten per-layer strategies from the layers' roles.

Each candidate is one (criterion, strategy) pair calibrated to the budget (global sparsity of the
prunable weights); its exact per-layer masks are kept while the shared runner fine-tunes it.
``granularity="channel"`` selects the structured sibling (:mod:`edgeprune.methods.catalog.structured`, method
``structured``): whole channels, neurons and heads leave the model under a measured latency, size, MACs or
parameter budget.

``baselines`` (default magnitude, SNIP, GraSP) adds the global single-criterion baselines as candidates
of the same sweep, at the same budget (so at the matched sparsity), seeds and fine-tune: one front over
everything trained, and the chosen model is the best of all, whatever its origin (setting ``baseline``).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Literal

import pydantic

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune.errors import ConfigError
from edgeprune.measure import budget as budget_lib
from edgeprune.methods.base import Candidate, Decision, Method, get_method, optional_parts, register
from edgeprune.methods.catalog import structured
from edgeprune.methods.mam_common import CRITERIA, ScoredOptions, check_prunable, strategy_candidates
from edgeprune.prune.masks import MaskBuilder, apply_masks

__all__ = ["CRITERIA", "BASELINES", "MixAndMatch", "check_prunable"]

BASELINES = ("magnitude", "snip", "grasp")  # the paper's set B; "random" is allowed too
Baseline = Literal["magnitude", "snip", "grasp", "random"]
GRANULARITIES = ("weight", "channel")


class Options(ScoredOptions):
    label = "mix_and_match options"
    baselines: list[Baseline] = pydantic.Field(
        list(BASELINES), description="Global baselines trained in the same sweep, at the same budget (empty: none).")
    granularity: Literal["weight"] = pydantic.Field(  # "channel": see MixAndMatch.variant
        "weight", description="weight: masks of single weights (this method); channel: the structured method.")


@dataclass
class State:
    roles: roles_lib.RoleTable
    ranges: dict
    builders: dict[str, MaskBuilder]
    baselines: dict | None = None  # name -> (baseline method, its prepared state)
    strategies: tuple[str, ...] = strategies_lib.NAMES  # the strategies of this model

    @property
    def criteria(self) -> list[str]:  # those that could score this model
        return list(self.builders)


@register
class MixAndMatch(Method):
    name = "mix_and_match"
    summary = ("ten per-layer strategies from layer roles × criteria (magnitude, gradient, product), unstructured; "
               "granularity=channel: the structured method")
    default_budget = 0.8
    Options = Options

    @classmethod
    def variant(cls, options):
        granularity = options.get("granularity", "weight")
        if granularity not in GRANULARITIES:
            raise ConfigError(f"granularity {granularity!r} is not allowed; allowed: {', '.join(GRANULARITIES)}")
        if granularity == "channel":
            return structured.Structured, {k: v for k, v in options.items() if k != "granularity"}
        defaults = structured.Options.model_fields
        # a channel-only option at its default is what a caller passing every option gives: left out
        for key in sorted(structured.CHANNEL_ONLY, key=lambda k: k != "drop_blocks"):
            if key in options and options[key] != defaults[key].default:
                raise ConfigError(f"{key}={options[key]!r} needs granularity='channel' (method 'structured'): "
                                  "granularity='weight' keeps the architecture")
        return cls, {k: v for k, v in options.items() if k not in structured.CHANNEL_ONLY}

    def check_budget(self, budget):
        value = budget_lib.parse(budget) if isinstance(budget, str) else budget
        if isinstance(value, budget_lib.Budget):
            raise ConfigError(f"budget {value} is not allowed for method 'mix_and_match': it needs granularity='channel' "
                              f"(method 'structured'; unstructured masks change neither latency, ONNX size nor MACs) "
                              f"or a sparsity in [0, 1)")
        return super().check_budget(value)

    def check(self, model, example):
        check_prunable(roles_lib.classify(model, example), model)

    def prepare(self, model, data, example):
        opts = self.options
        roles = roles_lib.classify(model, example)
        check_prunable(roles, model)
        ranges = ranges_lib.rules(roles, ranges_lib.RangeRules.build(opts.range_rules))
        needs_data = any(c != "magnitude" for c in opts.criteria)
        batches = scores_lib.calibration_batches(data.train, opts.calib_batches, opts.calib_batch_size) if needs_data else None
        builders = optional_parts(
            opts.criteria, lambda c: MaskBuilder(scores_lib.compute(c, model, None if c == "magnitude" else batches)),
            "criterion", need_one=True)

        def baseline(name):
            method = get_method(name, calib_batches=opts.calib_batches, calib_batch_size=opts.calib_batch_size)
            if name == "magnitude" and name in builders:  # the same scores: one copy (and one sort) for both
                return method, builders[name]
            return method, method.prepare(model, data, example)

        baselines = optional_parts(opts.baselines, baseline, "baseline", need_one=False)
        names = tuple(opts.strategies) if opts.strategies else strategies_lib.names_for(roles)
        return State(roles, ranges, builders, baselines, names)

    def candidates(self, state, budgets, seeds):
        plan = []
        for budget in budgets:
            built = self._calibrated(state, budget)
            plan += strategy_candidates(built, [s for s in state.strategies if s in built], state.criteria, budget, seeds)
            for name in state.baselines:
                plan += [Candidate(f"global-{name}-b{budget:g}-s{s}", budget, s, {"baseline": name}) for s in seeds]
        return plan

    @staticmethod
    def _calibrated(state, budget) -> dict:
        """Each strategy's per-layer sparsities at ``budget``; one its layers are too coarse to calibrate (a tiny model)
        is left out with a warning while another strategy or a baseline remains."""
        built, coarse = {}, []
        for name in state.strategies:
            try:
                built[name] = strategies_lib.build(name, state.ranges, state.roles, budget)
            except strategies_lib.Coarse as exc:
                coarse.append((name, exc))
        if coarse and not built and not state.baselines:
            raise coarse[0][1]
        if coarse:
            warnings.warn(f"strateg{'y' if len(coarse) == 1 else 'ies'} {', '.join(n for n, _ in coarse)} left out at budget "
                          f"{budget}: {coarse[0][1]}", UserWarning, stacklevel=4)
        return built

    def prune(self, state, model, candidate):
        setting = candidate.setting
        if "baseline" in setting:
            method, prepared = state.baselines[setting["baseline"]]
            decision = method.prune(prepared, model, candidate)
            decision.info = {**decision.info, "origin": f"global {setting['baseline']} baseline"}
            return decision
        masks = state.builders[setting["criterion"]].layerwise(setting["sparsities"])
        pruned = copy.deepcopy(model)
        apply_masks(pruned, masks)
        info = {"criterion": setting["criterion"], "strategy": setting["strategy"], "aliases": setting["aliases"],
                "origin": "mix_and_match"}
        return Decision(pruned, masks, info)
