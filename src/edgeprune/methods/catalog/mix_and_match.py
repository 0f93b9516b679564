"""Mix-and-Match: weights scored once per criterion, ten per-layer strategies from the layers' roles.

Each candidate is one (criterion, strategy) pair calibrated to the budget (global sparsity of the
prunable weights); its exact per-layer masks are kept while the shared runner fine-tunes it.
With ``granularity="channel"`` the strategies are channel fractions: whole channels, neurons and heads
leave the model (:mod:`edgeprune.methods.structured_mam`), the budget may be a measured latency, ONNX
size, MACs or parameter count (:mod:`edgeprune.measure.budget`), and fine-tuning distils from the input.

``baselines`` (default magnitude, SNIP, GraSP) adds the global single-criterion baselines as candidates
of the same sweep, at the same budget (so at the matched sparsity), seeds and fine-tune: one front over
everything trained, and the chosen model is the best of all, whatever its origin (setting ``baseline``).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Literal, Union

import pydantic
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, Config
from edgeprune.errors import ConfigError
from edgeprune.measure import budget as budget_lib
from edgeprune.methods import structured_mam
from edgeprune.methods.base import Candidate, Decision, Method, get_method, optional_parts, register
from edgeprune.prune.masks import MaskBuilder, apply_masks

CRITERIA = ("magnitude", "gradient", "product")
BASELINES = ("magnitude", "snip", "grasp")  # the paper's set B; "random" is allowed too
Baseline = Literal["magnitude", "snip", "grasp", "random"]
Criterion = Literal["magnitude", "gradient", "product"]
Strategy = Literal["min", "max", "balanced", "p30", "p50", "p70", "p90", "param_prop", "late_heavy", "early_heavy",
                   "mlp_heavy", "attn_aggressive"]


class Options(Config):
    label = "mix_and_match options"
    criteria: list[Criterion] = pydantic.Field(list(CRITERIA), min_length=1)
    # None: the model family's ten (strategies.names_for)
    strategies: list[Strategy] | None = pydantic.Field(None, min_length=1)
    range_rules: dict = {}
    baselines: list[Baseline] = list(BASELINES)  # global baselines trained in the same sweep ([] for none; weights only)
    calib_batches: int = pydantic.Field(10, ge=1, le=MAX_BATCHES)
    calib_batch_size: int = pydantic.Field(32, ge=1, le=MAX_BATCH_SIZE)
    granularity: Literal["weight", "channel"] = "weight"
    # channel: kept widths are multiples of it; "auto": ONNX Runtime's channel block under every budget (16 with
    # AVX-512, else 8: odd widths fall off its fast kernels), halved while a MACs/params/size/sparsity budget
    # cannot be met with it
    round_to: Union[int, str] = "auto"
    latency_runs: int = pydantic.Field(20, gt=0)  # channel: ONNX Runtime runs per latency measurement
    deploy_metrics: bool = True  # channel: ONNX bytes and ONNX Runtime latency (batch 1, 32) in every record
    # channel: numbers of residual blocks removed (least influence first) before the channels; each value is
    # its own set of candidates. Removing blocks removes operators, which channels cannot (batch-1 latency).
    drop_blocks: list[int] = [0]

    @pydantic.field_validator("drop_blocks", mode="before")
    @classmethod
    def _drop_blocks_are_valid(cls, value):
        values = [value] if isinstance(value, int) else value
        if (not isinstance(values, (list, tuple)) or not values
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values)):
            raise ConfigError(f"drop_blocks must be a list of integers >= 0 (residual blocks to remove), got {value!r}")
        return list(dict.fromkeys(values))

    @pydantic.field_validator("round_to", mode="before")
    @classmethod
    def _round_to_is_valid(cls, value):
        number = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if value == "auto" or (isinstance(number, int) and not isinstance(number, bool) and number >= 1):
            return number
        raise ConfigError(f"round_to must be 'auto' or an integer >= 1 (kept widths are multiples of it), got {value!r}")

    @pydantic.field_validator("range_rules")
    @classmethod
    def _rules_are_valid(cls, value: dict) -> dict:
        ranges_lib.RangeRules.build(value)  # a one-line ConfigError now, not after the input model is trained
        return value

    @pydantic.model_validator(mode="after")
    def _drop_blocks_need_channels(self):
        if self.drop_blocks != [0] and self.granularity != "channel":
            raise ConfigError(f"drop_blocks={self.drop_blocks} needs granularity='channel' (removed blocks change "
                              "the architecture; granularity='weight' keeps it)")
        return self


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


def check_prunable(roles: roles_lib.RoleTable, model: nn.Module) -> None:
    if not roles.prunable():
        raise ConfigError(f"model {type(model).__name__} has no prunable layer (conv or linear weight)")


@register
class MixAndMatch(Method):
    name = "mix_and_match"
    summary = ("ten per-layer strategies from layer roles × criteria (magnitude, gradient, product); unstructured, "
               "or channels/neurons/heads under a latency, size or MACs budget (granularity=channel)")
    default_budget = 0.8
    Options = Options

    @property
    def channel(self) -> bool:
        return self.options.granularity == "channel"

    @property
    def kd(self) -> bool:  # channel granularity distils from the input model by default
        return self.channel

    def check_budget(self, budget):
        value = budget_lib.parse(budget) if isinstance(budget, str) or self.channel else budget
        if isinstance(value, budget_lib.Budget) and not self.channel:
            raise ConfigError(f"budget {value} needs granularity='channel' (unstructured masks change neither "
                              f"latency, ONNX size nor MACs); with granularity='weight' give a sparsity in [0, 1)")
        return value if isinstance(value, budget_lib.Budget) else super().check_budget(value)

    def achieved(self, dense, decision):
        measured = decision.info.get("measured")
        return measured if measured is not None else super().achieved(dense, decision)

    def check(self, model, example):
        check_prunable(roles_lib.classify(model, example), model)

    def prepare(self, model, data, example):
        opts = self.options
        if self.channel:
            return structured_mam.prepare(model, data, example, opts)
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
            return method, method.prepare(model, data, example)

        baselines = optional_parts(opts.baselines, baseline, "baseline", need_one=False)
        names = tuple(opts.strategies) if opts.strategies else strategies_lib.names_for(roles)
        return State(roles, ranges, builders, baselines, names)

    def candidates(self, state, budgets, seeds):
        plan = []
        for budget in budgets:
            depths = self.options.drop_blocks if self.channel else [0]
            unreachable = []
            for depth in depths:
                try:
                    plan += self._strategies(state, budget, depth, seeds)
                except ConfigError as exc:  # the budget may be reachable with more blocks removed
                    if len(depths) == 1:
                        raise
                    unreachable.append((depth, exc))
            if len(unreachable) == len(depths):
                raise unreachable[0][1]
            for depth, exc in unreachable:
                warnings.warn(f"drop_blocks={depth}: {exc}; its candidates are left out", UserWarning, stacklevel=2)
            for name in {} if self.channel else state.baselines:
                plan += [Candidate(f"global-{name}-b{budget:g}-s{s}", budget, s, {"baseline": name}) for s in seeds]
        return plan

    def _strategies(self, state, budget, depth: int, seeds) -> list[Candidate]:
        """One candidate per (strategy, criterion, seed) at ``budget``, ``depth`` residual blocks removed."""
        if self.channel:
            names = self.options.strategies or strategies_lib.names_for(state.roles)
            built = structured_mam.strategy_vectors(state, names, budget, depth)
        else:
            names = state.strategies
            built = {s: strategies_lib.build(s, state.ranges, state.roles, budget) for s in names}
        same = strategies_lib.duplicates(built)
        groups = sorted({tuple(sorted([n, *same[n]])) for n in same} - {("balanced", "p50")})  # equal by definition
        if groups:
            warnings.warn(f"at budget {budget:g} these strategies give identical per-layer sparsities and are "
                          f"trained once each group: {'; '.join(' = '.join(g) for g in groups)} (the layer "
                          "ranges are too alike; see range_rules)", UserWarning, stacklevel=3)
        plan, seen = [], set()
        for strategy in names:
            if strategy in seen:
                continue
            aliases = [a for a in same.get(strategy, []) if a in built]
            seen.update([strategy, *aliases])
            for criterion in state.criteria:
                setting = {"criterion": criterion, "strategy": strategy, "aliases": aliases,
                           "sparsities": built[strategy]}
                if self.channel:
                    setting.update(granularity="channel", drop_blocks=depth)
                tag = f"-d{depth}" if depth else ""
                plan += [Candidate(f"mam-{criterion}-{strategy}{tag}-b{budget:g}-s{s}", budget, s, setting) for s in seeds]
        return plan

    def prune(self, state, model, candidate):
        setting = candidate.setting
        if self.channel:
            depth = setting.get("drop_blocks", 0)
            pruned, widths = structured_mam.pruned_copy(state, model, setting["sparsities"], candidate.budget,
                                                        setting["criterion"], depth)
            info = {k: setting[k] for k in ("criterion", "strategy", "aliases", "granularity")}
            info["round_to"] = structured_mam.rounding(state, candidate.budget, depth)
            calibration = state.calibrated.get((str(candidate.budget), setting["strategy"], depth), {})
            deploy = structured_mam.deploy_metrics(state, pruned, widths)
            skipped = {"skipped": widths.skipped} if widths.skipped else {}  # kept whole: torch-pruning failed on it
            return Decision(pruned, None, {**info, **calibration, "widths": dict(widths), **skipped, "deploy": deploy})
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

