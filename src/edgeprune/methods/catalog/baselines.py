"""Global single-criterion baselines: one threshold over all prunable weights (unstructured)."""

from __future__ import annotations

import copy

import pydantic

from edgeprune import scores as scores_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, Config
from edgeprune.methods.base import Decision, Method, register
from edgeprune.prune.masks import MaskBuilder, apply_masks


class Options(Config):
    label = "options of the global baselines (magnitude, snip, grasp, random)"
    calib_batches: int = pydantic.Field(
        10, ge=1, le=MAX_BATCHES, description="Calibration batches for the snip and grasp scores (magnitude and random use none).")
    calib_batch_size: int = pydantic.Field(32, ge=1, le=MAX_BATCH_SIZE, description="Batch size of the calibration batches.")


class GlobalBaseline(Method):
    criterion: str
    needs_data = True
    default_budget = 0.8
    calibrated_kinds = ("size@sparse",)  # masks shrink only the sparse artifact: its sparsity bisected to the bytes
    knob_range = (0.0, 0.99)
    Options = Options

    def prepare(self, model, data, example):
        batches = None
        if self.needs_data:
            batches = scores_lib.calibration_batches(data.train, self.options.calib_batches, self.options.calib_batch_size)
        return MaskBuilder(scores_lib.compute(self.criterion, model, batches))

    def prune(self, state: MaskBuilder, model, candidate):
        masks = state.global_(candidate.knob)
        pruned = copy.deepcopy(model)
        apply_masks(pruned, masks)
        return Decision(pruned, masks, {"criterion": self.criterion})


@register
class GlobalMagnitude(GlobalBaseline):
    name, criterion, needs_data = "magnitude", "magnitude", False
    summary = "global magnitude pruning: the smallest |w| of the whole model go (unstructured)"


@register
class Snip(GlobalBaseline):
    name = criterion = "snip"
    summary = "SNIP: global threshold on |w · dL/dw| over calibration batches (unstructured)"


@register
class Grasp(GlobalBaseline):
    name = criterion = "grasp"
    summary = "GraSP: global threshold on the gradient-flow score (unstructured)"


@register
class RandomBaseline(GlobalBaseline):
    name = criterion = "random"
    needs_data = False
    summary = "random pruning at the same sparsity (the floor every method must beat)"

    def prepare(self, model, data, example):
        return None

    def prune(self, state, model, candidate):
        builder = MaskBuilder(scores_lib.compute("random", model, seed=candidate.seed))
        return super().prune(builder, model, candidate)
