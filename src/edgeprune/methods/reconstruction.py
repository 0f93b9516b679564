"""The reconstruction option every structured method shares: after the removal, the layers that lost inputs are
re-fitted by least squares to the input model's outputs on calibration images (:mod:`edgeprune.surgery.reconstruct`).
"""

from __future__ import annotations

import math
from typing import Iterable, Literal, Union

import pydantic
from torch import nn

from edgeprune import scores as scores_lib
from edgeprune.config import Config
from edgeprune.measure.budget import kind_of
from edgeprune.surgery.reconstruct import Removed, reconstruct

MAX_IMAGES = 100_000
BATCH = 64


class ReconstructOptions(Config):
    reconstruct: Union[bool, Literal["auto"]] = pydantic.Field(
        "auto", description="Re-fit the layers that lost inputs (weights and bias, ridge least squares, layer by layer "
                            "in forward order) to the input model's outputs on calibration images; auto: on when the "
                            "data has no labels.")
    reconstruct_images: int = pydantic.Field(
        1024, ge=1, le=MAX_IMAGES, description="Calibration images (from the training split) for the reconstruction.")


def wanted(options, data) -> bool:
    """Whether ``options`` ask for reconstruction on ``data`` ("auto": when its training split has no labels)."""
    choice = getattr(options, "reconstruct", False)
    return (not getattr(data, "labelled", True)) if choice == "auto" else bool(choice)


def calibration_inputs(data, images: int) -> list:
    """``images`` training inputs (all of them when there are fewer), in seeded batches (the same for every candidate)."""
    train = getattr(data.train, "dataset", data.train)
    images = min(images, len(train)) if hasattr(train, "__len__") else images
    batch = min(BATCH, images)
    return [x[: images - i * batch] for i, (x, _) in
            enumerate(scores_lib.calibration_batches(data.train, math.ceil(images / batch), batch))]


def refit(pruned: nn.Module, reference: nn.Module, removed: Removed, inputs: list, budget=None,
          changed: Iterable[str] = ()) -> dict:
    """Reconstruct ``pruned`` in place (also the layers ``changed``: after a removed block); what a record says of it:
    layers fitted and their median relative error (residual over the target's variance) before and after. Under a
    size or parameter ``budget`` (met before the fit) no layer gains a bias."""
    counted = kind_of(budget) in ("size", "params")
    fits = reconstruct(pruned, reference, removed, inputs, changed=changed, new_bias=not counted)
    if not fits:
        return {"layers": 0}
    before, after = sorted(f.before for f in fits), sorted(f.after for f in fits)
    return {"layers": len(fits), "images": sum(len(x) for x in inputs),
            "median_error_before": round(before[len(fits) // 2], 4), "median_error_after": round(after[len(fits) // 2], 4)}
