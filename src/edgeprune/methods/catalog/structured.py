"""Structured Mix-and-Match: the ten strategies as per-layer channel fractions. Whole channels, MLP neurons and
attention heads leave the model (:mod:`edgeprune.methods.structured_mam`), each strategy is calibrated to the
budget measured on the pruned model (a latency, ONNX size, MACs, parameter count or sparsity:
:mod:`edgeprune.measure.budget`), optionally after removing residual blocks, and fine-tuning distils from the
input model. ``method="mix_and_match", granularity="channel"`` is the same method."""

from __future__ import annotations

import math
import warnings
from typing import Union

import pydantic

from edgeprune import roles as roles_lib
from edgeprune import strategies as strategies_lib
from edgeprune.errors import ConfigError
from edgeprune.measure import budget as budget_lib
from edgeprune.methods import reconstruction, structured_mam
from edgeprune.methods.base import Candidate, Decision, DefaultBudget, Method, register
from edgeprune.methods.mam_common import ScoredOptions, check_prunable, strategy_candidates


class Options(ScoredOptions, reconstruction.ReconstructOptions):
    label = "structured options"
    # odd widths fall off ONNX Runtime's fast kernels
    round_to: Union[int, str] = pydantic.Field(
        "auto", description="Kept widths are multiples of it; auto: ONNX Runtime's channel block (16 with AVX-512, "
                            "else 8), halved while a MACs, params, size or sparsity budget cannot be met with it.")
    latency_runs: int = pydantic.Field(20, gt=0, description="ONNX Runtime runs per latency measurement.")
    latency_table: bool = pydantic.Field(
        True, description="Latency budgets: the calibration proposes from a latency table (every layer timed on the "
                          "device, in the budget's runtime, at a few widths, cached) and timing confirms; False: bisect "
                          "on whole-model timings.")
    latency_aware: bool = pydantic.Field(
        True, description="With a latency table: one more strategy, latency_aware, removing the channels and attention "
                          "heads of least (Taylor) importance per millisecond the table says they save (HALP's greedy "
                          "knapsack); with drop_blocks above 0, also latency_aware_blocks, whose knapsack removes up "
                          "to max(drop_blocks) residual blocks too, choosing which.")
    deploy_metrics: bool = pydantic.Field(
        True, description="ONNX bytes and ONNX Runtime latency (batch 1 and 32) in every record.")
    # removing blocks removes operators, which channels cannot (batch-1 latency)
    drop_blocks: list[int] = pydantic.Field(
        [0], description="Numbers of residual blocks removed (least influence first) before the channels; each "
                         "value is its own set of candidates.")

    scratch_epochs: int = pydantic.Field(
        0, ge=0, le=10_000, description="The plain alternative on the front: per budget and seed, the input architecture "
                                        "narrowed uniformly to the budget, re-initialised and trained from scratch for "
                                        "this many epochs without distillation (0: none). Fair: the input model's "
                                        "training epochs plus the fine-tune's.")

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


def _say(recorded: list) -> None:
    for w in recorded:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


CHANNEL_ONLY = tuple(name for name in Options.model_fields if name not in ScoredOptions.model_fields)


@register
class Structured(Method):
    name = "structured"
    summary = ("Mix-and-Match's strategies as channel/neuron/head fractions (and residual blocks), calibrated to a "
               "measured latency, size, MACs or parameter budget")
    default_budget = 0.8
    kd = True
    Options = Options

    measured_kinds = ("latency", "size", "size@sparse", "macs", "params")  # its strategies calibrated to each

    def check_budget(self, budget):
        value = budget_lib.parse(budget)
        return value if isinstance(value, budget_lib.Budget) else super().check_budget(value)

    def achieved(self, dense, decision):
        return decision.info["measured"]

    def check(self, model, example):
        check_prunable(roles_lib.classify(model, example), model)

    def prepare(self, model, data, example):
        state = structured_mam.prepare(model, data, example, self.options)
        if reconstruction.wanted(self.options, data):
            state.refit = reconstruction.calibration_inputs(data, self.options.reconstruct_images)
        return state

    def candidates(self, state, budgets, seeds):
        plan = []
        for budget in budgets:
            try:
                with warnings.catch_warnings(record=True) as said:
                    warnings.simplefilter("always")
                    plan += self._budget_candidates(state, budget, seeds)
            except structured_mam.Unreachable as exc:
                reachable = math.floor(exc.best * 100) / 100
                if not isinstance(budget, DefaultBudget) or reachable < 0.05:
                    raise
                _say([w for w in said if not str(w.message).startswith(f"budget {budget:g} ")])  # the rest is moot
                said, why = [], str(exc).partition(": ")[2]
                warnings.warn(f"the default sparsity {budget:g} is out of reach on this model ({why}); pruned to "
                              f"{reachable:g} instead (name a budget to choose another)", UserWarning, stacklevel=2)
                plan += self._budget_candidates(state, reachable, seeds)
            finally:
                _say(said)
        return plan

    def _budget_candidates(self, state, budget, seeds):
        plan, depths, unreachable = [], self.options.drop_blocks, []
        for depth in depths:
            try:
                names = list(self.options.strategies or strategies_lib.names_for(state.roles))
                if self.options.latency_aware and structured_mam.has_table(state, budget):
                    names.append(structured_mam.LATENCY_AWARE)
                built = structured_mam.strategy_vectors(state, names, budget, depth)
                plan += strategy_candidates(built, [n for n in names if n in built], state.criteria, budget, seeds,
                                            setting={"granularity": "channel", "drop_blocks": depth},
                                            tag=f"-d{depth}" if depth else "")
            except ConfigError as exc:  # the budget may be reachable with more blocks removed
                if len(depths) == 1:
                    raise
                unreachable.append((depth, exc))
        if len(unreachable) == len(depths):
            raise unreachable[0][1]
        plan += self._blocks_candidates(state, budget, seeds)
        if self.options.scratch_epochs:
            vector = structured_mam.uniform_vector(state, budget)
            setting = {"strategy": structured_mam.SCRATCH, "criterion": "scratch", "aliases": [], "sparsities": vector,
                       "granularity": "channel", "drop_blocks": 0, "scratch": True}
            plan += [Candidate(f"scratch-{structured_mam.SCRATCH}-b{budget:g}-s{s}", budget, s, setting)
                     for s in seeds]
        for depth, exc in unreachable:
            warnings.warn(f"drop_blocks={depth}: {exc}; its candidates are left out", UserWarning, stacklevel=3)
        return plan

    def _blocks_candidates(self, state, budget, seeds):
        """With blocks to remove and a latency table: latency-aware allocation choosing blocks and widths together."""
        deepest, name = max(self.options.drop_blocks), structured_mam.LATENCY_AWARE_BLOCKS
        if not (deepest and self.options.latency_aware and structured_mam.has_table(state, budget)):
            return []
        found = structured_mam.blocks_strategy(state, budget, deepest)
        if found is None:
            return []
        vector, blocks = found
        return strategy_candidates({name: vector}, [name], state.criteria, budget, seeds,
                                   tag=f"-d{len(blocks)}" if blocks else "",
                                   setting={"granularity": "channel", "drop_blocks": len(blocks), "blocks": list(blocks)})

    def prune(self, state, model, candidate):
        setting = candidate.setting
        depth = tuple(setting["blocks"]) if "blocks" in setting else setting.get("drop_blocks", 0)
        scratch = setting.get("scratch", False)
        pruned, widths = structured_mam.pruned_copy(state, model, setting["sparsities"], candidate.budget,
                                                    "magnitude" if scratch else setting["criterion"], depth)
        info = {k: setting[k] for k in ("criterion", "strategy", "aliases", "granularity")}
        if scratch:  # trained from scratch by the runner (runs.job), not fine-tuned
            structured_mam.reinitialised(pruned, candidate.seed)
            info["scratch"] = {"epochs": self.options.scratch_epochs}
        info["round_to"] = structured_mam.rounding(state, candidate.budget, depth)
        calibration = state.calibrated.get((str(candidate.budget), setting["strategy"], depth), {})
        if state.refit is not None and not scratch:
            info["reconstruction"] = reconstruction.refit(pruned, structured_mam.reference(state), widths.removed,
                                                          state.refit, candidate.budget,
                                                          changed=structured_mam.after_blocks(state, pruned, depth))
        deploy = structured_mam.deploy_metrics(state, pruned, widths)
        skipped = {"skipped": widths.skipped} if widths.skipped else {}  # kept whole: torch-pruning failed on it
        return Decision(pruned, None, {**info, **calibration, "widths": dict(widths), **skipped, "deploy": deploy})
