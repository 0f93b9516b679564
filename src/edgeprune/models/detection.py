"""Object detectors: torchvision's (``torchvision:<name>``) and Ultralytics YOLO (``yolo:<name>``, :mod:`.yolo`).

Every detector follows torchvision's detection API. Train mode: ``model(images, targets)`` returns a dict of
scalar losses; eval mode: ``model(images)`` returns one ``{"boxes" [N, 4] xyxy pixels, "scores" [N],
"labels" [N]}`` dict per image. ``images`` is a batch [B, C, H, W] (torchvision's detectors take it as their
list of images); ``targets`` one ``{"boxes", "labels"}`` dict per image, labels 1..K (0 = background, so
``num_classes`` = K + 1).

torchvision detectors build with random weights (``weights=None, weights_backbone=None``; a local
``weights=PATH`` loads as for classifiers). Their transform resizes to ``image_size`` (``min_size`` =
``max_size`` = ``image_size``, SSD's fixed size too), so small images are not upscaled to 800 px; for
``in_channels`` other than 3 the transform's mean/std get one entry per channel (the mean of the RGB
defaults) and the first conv is adapted (:func:`~edgeprune.models.adapters.adapt_first_conv`). Mask and
keypoint R-CNN need masks/keypoints in their targets: not built here.

:func:`export_module` gives a detector's dense part as a module returning tensors only (before anchor
decoding and NMS), for ONNX export and latency measurement.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.models._common import first_line
from edgeprune.models.adapters import _local_weights, adapt_first_conv, import_optional, load_local_weights

NOT_BOX_ONLY = ("maskrcnn", "keypointrcnn")


def torchvision_names() -> list[str]:
    """Names of torchvision's box detectors (detection models whose targets are boxes and labels only)."""
    tv_models = import_optional("torchvision.models")
    return [n for n in tv_models.list_models(module=tv_models.detection) if not n.startswith(NOT_BOX_ONLY)]


def _fit_transform(model: nn.Module, in_channels: int, image_size: int) -> None:
    """The detector's transform: resize to ``image_size``, and a mean/std entry per input channel."""
    t = model.transform
    t.min_size, t.max_size = (image_size,), image_size
    if getattr(t, "fixed_size", None) is not None:  # SSD: a fixed square input
        t.fixed_size = (image_size, image_size)
    if len(t.image_mean) != in_channels:
        mean, std = sum(t.image_mean) / len(t.image_mean), sum(t.image_std) / len(t.image_std)
        t.image_mean, t.image_std = [mean] * in_channels, [std] * in_channels


def create_torchvision_detector(name: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> nn.Module:
    """``torchvision.models.get_model(name, num_classes=, weights=None, weights_backbone=None, **options)``."""
    tv_models = import_optional("torchvision.models")
    if name.startswith(NOT_BOX_ONLY):
        raise ConfigError(f"torchvision:{name} needs masks or keypoints in its targets; allowed detectors: "
                          f"{', '.join(torchvision_names())}")
    options, local = _local_weights(options)
    options = {"weights": None, "weights_backbone": None, **options}
    try:
        model = tv_models.get_model(name, num_classes=num_classes, **options)
    except (OSError, RuntimeError) as exc:
        raise DependencyError(f"torchvision:{name} weights cannot be fetched offline ({first_line(exc)}); "
                              "use weights=None, weights_backbone=None") from None
    except (TypeError, ValueError) as exc:
        raise ModelError(f"torchvision:{name} cannot be built with {options} ({first_line(exc)})") from None
    _fit_transform(model, in_channels, image_size)
    if in_channels != 3:
        adapt_first_conv(model.backbone, in_channels)
    if local:
        load_local_weights(model, local, f"torchvision:{name}", num_classes)
    return check_detector(model, f"torchvision:{name}", in_channels, image_size)


@torch.no_grad()
def check_detector(model: nn.Module, what: str, in_channels: int, image_size: int) -> nn.Module:
    """One eval-mode dry run: a list of one {boxes, scores, labels} dict, or a one-line ModelError."""
    was_training = model.training
    try:
        output = model.eval()(torch.zeros(1, in_channels, image_size, image_size))
    except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
        raise ModelError(f"{what} cannot take {in_channels}x{image_size}x{image_size} inputs ({first_line(exc)}); "
                         "use a larger image_size") from None
    finally:
        model.train(was_training)
    if not (isinstance(output, list) and len(output) == 1 and isinstance(output[0], dict)
            and {"boxes", "scores", "labels"} <= set(output[0])):
        raise ModelError(f"{what} returns {type(output).__name__} in eval mode; expected a list of one dict "
                         "with boxes, scores, labels per image")
    return model


class DetectorHeads(nn.Module):
    """The dense part of a torchvision detector: normalise, backbone, head(s); tensors only.

    One-stage detectors (SSD, SSDlite, RetinaNet, FCOS) return their head's outputs in key order
    (``bbox_ctrness`` for FCOS, then ``bbox_regression`` [B, anchors, 4], ``cls_logits`` [B, anchors, classes]);
    decode them with the model's ``anchor_generator`` and ``box_coder``. Two-stage Faster R-CNN returns its
    region proposal network's objectness and box deltas per feature level: its RoI stage needs NMS'd proposals,
    so it is left out. Inputs must already be at the model's size (its resize is skipped).
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d = self.detector
        mean = torch.as_tensor(d.transform.image_mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(d.transform.image_std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        features = d.backbone((x - mean) / std)
        features = list(features.values()) if isinstance(features, dict) else [features]
        if hasattr(d, "rpn"):
            objectness, deltas = d.rpn.head(features)
            return (*objectness, *deltas)
        out = d.head(features)
        return tuple(out[k] for k in sorted(out))


def _marked(module: nn.Module) -> nn.Module:
    module.edgeprune_deployable = True  # export_module of it is itself
    return module


def export_module(model: nn.Module) -> nn.Module:
    """A module with ``forward(x [B, C, H, W]) -> tuple of tensors``: the detector before its post-processing.

    The model's own ``export_module()`` when it has one (the YOLO wrapper: its raw prediction tensor),
    :class:`DetectorHeads` for torchvision detectors. It shares the model's parameters.
    """
    if getattr(model, "edgeprune_deployable", False):
        return model
    own = getattr(model, "export_module", None)
    if callable(own):
        return _marked(own())
    if all(hasattr(model, a) for a in ("transform", "backbone")) and (hasattr(model, "head") or hasattr(model, "rpn")):
        return _marked(DetectorHeads(model))
    raise ModelError(f"{type(model).__name__} is not a detector edgeprune can export raw outputs of; allowed: "
                     "torchvision detectors, yolo: models, or a model with an export_module() method")
