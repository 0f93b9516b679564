"""Object detection: torchvision's detection API, COCO mAP@[.5:.95] (primary), mAP@.5 and mAP@.75.

Batches are ``(x [B, C, H, W], targets)``, targets a list of B dicts ``{"boxes": float [N, 4] xyxy pixels,
"labels": int64 [N] in 1..K}`` (0 is the background: ``num_classes`` = K + 1). Models follow torchvision's
detection API (its detectors, and ``yolo:`` models from :mod:`edgeprune.models.yolo`): in train mode
``model(x, targets)`` returns a dict of scalar losses, summed here (a model returning one scalar loss works
too); in eval mode ``model(x)`` returns one ``{"boxes", "scores", "labels"}`` dict per image. A model of
your own with its own loss: ``Detection(loss_fn=fn)``, ``fn(model(x) in train mode, targets) -> scalar``.

A model in eval mode asked for its loss (gradient scores taken in eval state) gives it with every module but
its normalisation and dropout layers switched to train mode for that call: detectors compute losses only in
train mode, and the running statistics stay as they were.

Distillation: a detector in train mode gives no predictions to match, so :meth:`Detection.distil_loss` is
alpha · task loss + (1 − alpha) · the mean squared error between the student's and the teacher's backbone
features (``model.backbone``'s outputs: every FPN level or feature map of equal shape; a channel-pruned
student's narrower levels are skipped). Without a matching level it is the task loss alone. The temperature
is not used.

Evaluation keeps per image its (prediction, target) pair on the CPU, matches them once as COCO does
(:mod:`edgeprune.tasks.box_map`), and reduces any selection of images by re-weighting, so the bootstrap
interval over images is fast: 1000 resamples of a 500-image test set take a few seconds.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import ConfigError, DataError, ModelError
from edgeprune.models.detection import export_module
from edgeprune.tasks import box_map
from edgeprune.tasks.base import Statistics, Task, output_tensors

EXPECTED = 'a list of one dict per image: {"boxes": float [N, 4] xyxy pixels, "labels": int64 [N] in 1..K}'
KEEP_EVAL = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.modules.dropout._DropoutNd)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}" + (f" of {len(value)} items" if isinstance(value, (list, tuple)) else "")


@contextlib.contextmanager
def _loss_mode(model: nn.Module):
    """Train mode for the call when ``model`` is in eval mode, its normalisation and dropout layers excepted."""
    if model.training:
        yield
        return
    switched = [m for m in model.modules() if not isinstance(m, KEEP_EVAL)]
    for m in switched:
        m.training = True
    try:
        yield
    finally:
        for m in switched:
            m.training = False


class DetectionStatistics(list):
    """Per-image (prediction, target) pairs on the CPU, matched once for :func:`box_map.average_precision`."""

    def __init__(self, pairs: list):
        super().__init__(pairs)
        arrays = [(p["boxes"].double().numpy(), p["scores"].double().numpy(), p["labels"].numpy(),
                   t["boxes"].double().numpy(), t["labels"].numpy()) for p, t in pairs]
        self.matches = box_map.Matches([box_map.match(*a) for a in arrays], [a[4] for a in arrays])


class Detection(Task):
    name = "detection"
    metric = "map"
    label = "mAP@[.5:.95]"
    resamples = 1000

    def __init__(self, loss_fn: Callable | None = None):
        if loss_fn is not None and not callable(loss_fn):
            raise ConfigError(f"loss_fn must be a callable (model output in train mode, targets) -> scalar, "
                              f"got {type(loss_fn).__name__}")
        self.loss_fn = loss_fn

    # -- batches ----------------------------------------------------------------------------------
    def check_target(self, x, y, what):
        n, (height, width) = x.shape[0], x.shape[-2:]
        if not isinstance(y, (list, tuple)) or len(y) != n or not all(isinstance(t, dict) for t in y):
            raise DataError(f"{what} yields detection targets as {_describe(y)}; expected {EXPECTED}, {n} per batch")
        out = []
        for i, t in enumerate(y):
            boxes, labels = t.get("boxes"), t.get("labels")
            if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point() or boxes.ndim != 2 or boxes.shape[1] != 4:
                raise DataError(f"{what}: image {i} has boxes as {_describe(boxes)}; expected float [N, 4] (x1, y1, x2, y2 pixels)")
            integer = isinstance(labels, torch.Tensor) and not (labels.is_floating_point() or labels.dtype == torch.bool)
            if not integer or labels.ndim != 1 or len(labels) != len(boxes):
                raise DataError(f"{what}: image {i} has labels as {_describe(labels)}; expected int64 [{len(boxes)}], "
                                "one per box")
            out.append({**t, "boxes": boxes.float(), "labels": labels.long()})
        self._check_values(out, width, height, what)
        return out

    @staticmethod
    def _check_values(targets: list[dict], width: int, height: int, what: str) -> None:
        boxes = torch.cat([t["boxes"] for t in targets]).detach()
        labels = torch.cat([t["labels"] for t in targets]).detach()
        if not len(boxes):
            return
        image = torch.cat([torch.full((len(t["labels"]),), i) for i, t in enumerate(targets)])
        x1, y1, x2, y2 = boxes.unbind(1)
        checks = (
            (labels < 1, "label {label}; allowed labels are 1..K (0 is the background)"),
            (~torch.isfinite(boxes).all(1), "a non-finite box {box}"),
            ((x2 <= x1) | (y2 <= y1), "a degenerate box {box}; expected x1 < x2 and y1 < y2"),
            ((x1 < 0) | (y1 < 0) | (x2 > width + 1e-3) | (y2 > height + 1e-3),
             f"box {{box}} outside the {width}x{height} image; expected 0 <= x1 < x2 <= {width}, 0 <= y1 < y2 <= {height}"),
        )
        for bad, message in checks:
            if bad.any():
                j = int(bad.nonzero()[0, 0])
                text = message.format(label=int(labels[j]), box=[round(float(v), 2) for v in boxes[j]])
                raise DataError(f"{what}: image {int(image[j])} has {text}")

    def to_device(self, y, device):
        return [{k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in t.items()} for t in y]

    def batch_size(self, y):
        return len(y)

    # -- training ---------------------------------------------------------------------------------
    def total_loss(self, output) -> torch.Tensor:
        """The sum of a train-mode output's losses (a dict of scalars) or the scalar loss itself."""
        if isinstance(output, torch.Tensor) and output.numel() == 1:
            return output.reshape(())
        if isinstance(output, dict) and output and all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in output.values()):
            return sum(v.reshape(()) for v in output.values())
        what = ", ".join(f"{k}={_describe(v)}" for k, v in output.items()) if isinstance(output, dict) else _describe(output)
        raise ModelError(f"a detection model in train mode returned {what}; expected a dict of scalar losses "
                         "(torchvision's API: model(images, targets)) or a scalar loss, or pass Detection(loss_fn=...)")

    def train_loss(self, model, x, y):
        with _loss_mode(model):
            if self.loss_fn is not None:
                output = model(x)
                return self.check_loss(self.loss_fn(output, y)), output
            _check_takes_targets(model)
            output = model(x, y)
        return self.total_loss(output), output

    def distil_loss(self, model, teacher, x, y, alpha, temperature):
        student_features: list = []
        teacher_features: list = []
        hooks = [_capture(m, store) for m, store in ((model, student_features), (teacher, teacher_features))]
        was_training = teacher.training
        try:
            loss, output = self.train_loss(model, x, y)
            if hooks[0] is not None and hooks[1] is not None:
                with torch.no_grad():
                    teacher.eval()(x)
        finally:
            teacher.train(was_training)
            for hook in hooks:
                if hook is not None:
                    hook.remove()
        pairs = [(s, t) for s, t in zip(_tensors(student_features), _tensors(teacher_features)) if s.shape == t.shape]
        if not pairs:
            return loss, output
        feature = sum(F.mse_loss(s.float(), t.float()) for s, t in pairs) / len(pairs)
        return alpha * loss + (1.0 - alpha) * feature, output

    # -- evaluation -------------------------------------------------------------------------------
    def predict(self, model, x):
        return model(x)

    def example_statistics(self, output, y):
        if not isinstance(output, (list, tuple)) or len(output) != len(y):
            raise ModelError(f"a detection model in eval mode returned {_describe(output)} for {len(y)} images; expected "
                             "one dict with boxes, scores, labels per image")
        return [({k: output_i[k].detach().cpu() for k in ("boxes", "scores", "labels")},
                 {k: y_i[k].detach().cpu() for k in ("boxes", "labels")}) for output_i, y_i in zip(output, y)]

    def join(self, parts):
        return DetectionStatistics([pair for part in parts for pair in part])

    def reduce(self, values, index=None):
        matches = values.matches if isinstance(values, DetectionStatistics) else DetectionStatistics(values).matches
        weights = None if index is None else np.bincount(np.asarray(index, dtype=np.int64), minlength=matches.n)
        return box_map.summary(box_map.average_precision(matches, weights))

    def interval(self, stats: Statistics, seed: int = 0) -> tuple[float, float]:
        """95 % percentile bootstrap interval of mAP, resampling images."""
        if stats.n == 0:
            return (math.nan, math.nan)
        rng = np.random.default_rng(seed)
        values = [self.reduce(stats.values, rng.integers(0, stats.n, stats.n))[self.metric] for _ in range(self.resamples)]
        if np.isnan(values).all():
            return (math.nan, math.nan)
        lo, hi = np.nanpercentile(values, [2.5, 97.5])
        return float(lo), float(hi)

    def deployable(self, model):
        """The detector before decoding and NMS (:func:`edgeprune.models.detection.export_module`): what a runtime
        runs, is timed and checked for parity; a model of a user's own without an ``export_module()``: itself."""
        try:
            return export_module(model)
        except ModelError:
            return model

    def scored_outputs(self, output):
        return output_tensors(output)

    # -- the model --------------------------------------------------------------------------------
    def check_output(self, model, output, example, data):
        ok = isinstance(output, (list, tuple)) and len(output) == len(example) and all(
            isinstance(o, dict) and all(isinstance(o.get(k), torch.Tensor) for k in ("boxes", "scores", "labels")) for o in output)
        if not ok:
            raise ModelError(f"{type(model).__name__} returns {_describe(output)} in eval mode; a detection model returns "
                             f"one dict with boxes [N, 4], scores [N], labels [N] per image ({len(example)} here)")


def _check_takes_targets(model: nn.Module) -> None:
    try:
        inspect.signature(model.forward).bind(None, None)
    except TypeError:
        raise ModelError(f"{type(model).__name__}.forward takes no targets; a detection model without its own loss "
                         "follows torchvision's API, model(images, targets) -> dict of losses in train mode, or pass "
                         "Detection(loss_fn=your_loss(output, targets))") from None
    except ValueError:  # no signature to read (a builtin): let the call itself tell
        pass


def _feature_module(model: nn.Module) -> nn.Module | None:
    model = getattr(model, "module", model) if isinstance(model, nn.parallel.DistributedDataParallel) else model
    backbone = getattr(model, "backbone", None)
    return backbone if isinstance(backbone, nn.Module) else None


def _capture(model: nn.Module, store: list):
    module = _feature_module(model)
    return None if module is None else module.register_forward_hook(lambda _m, _i, out: store.append(out))


def _tensors(outputs: list) -> list[torch.Tensor]:
    """The feature maps of the first captured backbone output (a tensor or a dict/list of levels)."""
    if not outputs:
        return []
    out = outputs[0]
    if isinstance(out, torch.Tensor):
        return [out]
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    return [v for v in values if isinstance(v, torch.Tensor)]
