"""Reconvene: structured pruning at initialisation. An unstructured PaI mask of a freshly initialised copy
tells which conv layers tolerate structured pruning; those lose channels physically; the shared runner
then trains the smaller model from scratch (``finetune`` is its training budget).

``modes=["reconvene", "unstructured"]`` also trains the unstructured PaI mask itself (UPaI, the paper's
comparison) as candidates of the same sweep, from the same initialisation and scores."""

from __future__ import annotations

import copy
from typing import Literal

import pydantic
import torch

from edgeprune import scores as scores_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, Config
from edgeprune.errors import ConfigError
from edgeprune.methods.base import Candidate, Decision, Method, register
from edgeprune.methods.reconvene import DATA_SCORES, generate, pai_masks
from edgeprune.prune.masks import apply_masks
from edgeprune.prune.rectify import default_reinit
from edgeprune.prune.sensitivity import CONV_TYPES


class Options(Config):
    label = "reconvene options"
    modes: list[Literal["reconvene", "unstructured"]] = pydantic.Field(
        ["reconvene"], min_length=1,
        description="reconvene (structured: the method) and/or unstructured (the PaI mask itself, UPaI, to compare).")
    score: Literal["synflow", "snip", "grasp", "magnitude", "random"] = pydantic.Field(
        "synflow", description="PaI criterion scoring the weights at initialisation.")
    synflow_rounds: int = pydantic.Field(100, gt=0, le=MAX_BATCHES, description="SynFlow rounds (exponential schedule).")
    weighted: bool = pydantic.Field(
        False, description="PSE: compare each conv layer with the sparsity as a parameter-weighted average.")
    keep: Literal["score_mass", "zero_filters"] = pydantic.Field(
        "score_mass", description="Channels an insensitive layer keeps.")
    group_rule: Literal["pooled", "all"] = pydantic.Field("pooled", description="Channels of residual groups.")
    width: Literal["density", "sqrt"] = pydantic.Field("sqrt", description="Kept width with keep=score_mass.")
    round_to: int = pydantic.Field(1, ge=1, description="Kept channels of each pruned layer rounded up to a multiple of it.")
    calib_batches: int = pydantic.Field(1, gt=0, le=MAX_BATCHES, description="Calibration batches for snip and grasp.")
    calib_batch_size: int = pydantic.Field(100, gt=0, le=MAX_BATCH_SIZE, description="Calibration batch size.")


def reinitialised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with every layer re-initialised from ``seed`` (the 'at initialisation' model)."""
    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in fresh.modules():
        default_reinit(module)
    return fresh


@register
class Reconvene(Method):
    name = "reconvene"
    summary = "Reconvene: a PaI mask at initialisation picks the conv layers that lose channels (structured)"
    default_budget = 0.9
    finetune_epochs = 5
    from_scratch = True
    budget_tolerance = 0.1
    calibrated_kinds = ("latency", "size", "size@sparse", "macs", "params")  # its sparsity bisected to the measured budget
    knob_range = (0.0, 0.99)
    Options = Options

    def check_budget(self, budget):
        value = super().check_budget(budget)
        if self.calibrates(value) and value.key != "size@sparse" and "unstructured" in self.options.modes:
            raise ConfigError(f"budget {value} needs modes=[reconvene]: the unstructured PaI mask (mode 'unstructured') "
                              "changes neither latency, size, MACs nor parameters; give it a sparsity in [0, 1)")
        return value

    def check(self, model, example):
        if "reconvene" in self.options.modes and not any(isinstance(m, CONV_TYPES) for m in model.modules()):
            raise ConfigError(f"model {type(model).__name__} has no convolution layer for Reconvene's structured step; "
                              "-O modes=[unstructured] (pai --mode unstructured) trains the unstructured PaI mask only")

    def prepare(self, model, data, example):
        batches = None
        if self.options.score in DATA_SCORES:
            batches = scores_lib.calibration_batches(data.train, self.options.calib_batches, self.options.calib_batch_size)
        return example[:1], batches

    def candidates(self, state, budgets, seeds):
        names = {"reconvene": "reconvene", "unstructured": "upai"}
        return [Candidate(f"{names[mode]}-b{b:g}-s{s}", b, s, {"mode": mode})
                for b in budgets for s in seeds for mode in dict.fromkeys(self.options.modes)]

    def prune(self, state, model, candidate):
        example, batches = state
        o = self.options
        score_options = {"rounds": o.synflow_rounds} if o.score == "synflow" else None
        if candidate.setting.get("mode") == "unstructured":
            init = reinitialised(model, candidate.seed)
            _, masks = pai_masks(init, example, candidate.knob, o.score, batches, seed=candidate.seed,
                                 score_options=score_options)
            apply_masks(init, masks)
            return Decision(init, masks, {"mode": "unstructured", "score": o.score})
        pruned, masks, info = generate(
            reinitialised(model, candidate.seed), example, candidate.knob, o.score, batches,
            weighted=o.weighted, keep=o.keep, group_rule=o.group_rule, width=o.width, round_to=o.round_to,
            seed=candidate.seed, score_options=score_options,
        )
        keys = ("score", "insensitive", "structured", "upai", "reconvene", "generation_seconds", "nothing_removed")
        decided = {"mode": "reconvene"} | {k: info[k] for k in keys if k in info}  # nothing_removed: why, when so
        return Decision(pruned, masks, decided)
