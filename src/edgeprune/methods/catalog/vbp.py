"""Variance-Based Pruning: MLP hidden neurons of lowest activation variance go, their mean is folded into
the next bias; the shared runner fine-tunes with knowledge distillation from the input model."""

from __future__ import annotations

from typing import Literal

import pydantic

from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES
from edgeprune.data import make_loader
from edgeprune.methods import reconstruction
from edgeprune.methods.base import Decision, Method, register
from edgeprune.methods.vbp import DEFAULT_MIN_KEEP, collect_statistics, find_mlp_blocks, prune_with_statistics


class Options(reconstruction.ReconstructOptions):
    label = "vbp options"
    selection: Literal["variance", "magnitude", "random"] = pydantic.Field(
        "variance", description="Neurons removed first: lowest activation variance (the paper), smallest weights, random.")
    compensation: bool = pydantic.Field(True, description="Fold the removed neurons' mean activations into the next bias.")
    per_layer: bool = pydantic.Field(False, description="Remove the ratio in every block instead of ranking globally.")
    min_keep: int = pydantic.Field(DEFAULT_MIN_KEEP, ge=1, description="Neurons every MLP block keeps at least.")
    calib_batches: int = pydantic.Field(
        0, ge=0, le=MAX_BATCHES, description="Calibration batches for the statistics; 0: one pass over the training split.")
    calib_batch_size: int = pydantic.Field(64, gt=0, le=MAX_BATCH_SIZE, description="Batch size of the calibration pass.")


@register
class VarianceBasedPruning(Method):
    name = "vbp"
    summary = "Variance-Based Pruning: remove low-variance MLP hidden neurons, fold their mean (structured)"
    budget_name = "ratio"
    budget_help = "fraction of all MLP hidden neurons removed"
    default_budget = 0.5
    kd = True
    budget_tolerance = 0.0
    calibrated_kinds = ("latency", "size", "size@sparse", "macs", "params")  # its ratio bisected to the measured budget
    Options = Options

    def check(self, model, example):
        find_mlp_blocks(model, example)

    def prepare(self, model, data, example):
        blocks = find_mlp_blocks(model, example)
        train = data.train.with_augment(False) if hasattr(data.train, "with_augment") else data.train  # statistics of the images as they are
        loader = make_loader(train, self.options.calib_batch_size)  # a user's DataLoader passes as it is
        stats = collect_statistics(model, loader, blocks=blocks, calib_batches=self.options.calib_batches,
                                   example_input=example)
        refit = reconstruction.calibration_inputs(data, self.options.reconstruct_images) \
            if reconstruction.wanted(self.options, data) else None
        return stats, refit

    def prune(self, state, model, candidate):
        o, (statistics, refit) = self.options, state
        pruned, stats = prune_with_statistics(
            model, statistics, candidate.knob, compensation=o.compensation, selection=o.selection,
            per_layer=o.per_layer, min_keep=o.min_keep, seed=candidate.seed,
        )
        info = stats.summary()
        if refit is not None:
            info["reconstruction"] = reconstruction.refit(pruned, model, stats.removed(), refit, candidate.budget)
        return Decision(pruned, None, info)

    def achieved(self, dense, decision):
        info = decision.info
        return info["pruned_neurons"] / max(info["total_neurons"], 1)

