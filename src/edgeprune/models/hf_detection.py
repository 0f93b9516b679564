"""HF transformers detectors from a local config, ``hf-config:detr`` and ``hf-config:yolos``, behind torchvision's
detection API.

``DetrForObjectDetection`` / ``YolosForObjectDetection`` with random weights, built offline from a small config
(:data:`DETR_DEFAULTS`, :data:`YOLOS_DEFAULTS`; every config key overrides them, as for ``hf-config:``): DETR on a
4-stage basic-block HF ResNet backbone (no timm, no pretrained weights), YOLOS a 4-layer ViT with 8 px patches.
HF's detectors have no background class but their own "no object" one: ``num_labels`` = num_classes - 1, our label
l is HF's class l - 1. :class:`HFDetector` keeps the HF model under ``.hf_model`` and adds what torchvision's API
needs:

- train mode, ``model(images, targets)``: HF's own loss (Hungarian matching, CE + L1 + GIoU) on our targets (boxes
  as normalised cx, cy, w, h), returned as its weighted terms ``{"loss_ce", "loss_bbox", "loss_giou"}`` (their sum
  is HF's ``loss``; its ``cardinality_error`` is a logged count, not a loss);
- eval mode, ``model(images)``: the image processor's own ``post_process_object_detection`` with threshold 0 (every
  query: its best class without "no object", softmax score, box in pixels xyxy, clipped to the image), labels + 1;
- :meth:`HFDetector.export_module`: pixels -> (``logits`` [B, queries, K + 1], ``pred_boxes`` [B, queries, 4]).

HF freezes DETR's backbone BatchNorm (and its stem and first stage), which suits a pretrained backbone only: with
random weights they are plain, trainable ``BatchNorm2d`` layers here.
"""

from __future__ import annotations

import functools
import re
from types import SimpleNamespace

import torch
from torch import nn

from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.models import hf
from edgeprune.models._common import first_line
from edgeprune.models.detection import check_detector

HEADS = {"detr": "DetrForObjectDetection", "yolos": "YolosForObjectDetection"}
PROCESSORS = {"detr": "DetrImageProcessor", "yolos": "YolosImageProcessor"}
DETR_BACKBONE = {"model_type": "resnet", "embedding_size": 32, "hidden_sizes": [32, 64, 128, 256], "depths": [1, 1, 1, 1],
                 "layer_type": "basic", "out_features": ["stage4"]}
DETR_DEFAULTS = {"use_timm_backbone": False, "d_model": 128, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
                 "decoder_attention_heads": 4, "encoder_ffn_dim": 512, "decoder_ffn_dim": 512, "num_queries": 20}
YOLOS_DEFAULTS = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512,
                  "patch_size": 8, "num_detection_tokens": 20}
_AUX_SUFFIX = re.compile(r"_\d+$")  # auxiliary_loss=True: loss_ce_0, loss_bbox_0... per decoder layer


def handles(kind: str, ref: str) -> bool:
    """Is ``kind:ref`` an HF detector built here?"""
    return kind == "hf-config" and ref.strip().lower() in HEADS


def is_detector_build(build: dict) -> bool:
    """Does a checkpoint's build info describe an HF detector (rebuilt by :func:`from_build`)?"""
    return build.get("hf_class") in HEADS.values()


def _trainable_backbone(hf_model: nn.Module) -> None:
    """DETR's frozen backbone BatchNorms as ``BatchNorm2d`` (same statistics), every parameter trainable."""
    for module in list(hf_model.modules()):
        for name, child in module.named_children():
            if type(child).__name__ == "DetrFrozenBatchNorm2d":
                bn = nn.BatchNorm2d(child.weight.numel())
                with torch.no_grad():
                    for key in ("weight", "bias", "running_mean", "running_var"):
                        getattr(bn, key).copy_(getattr(child, key))
                setattr(module, name, bn)
    for p in hf_model.parameters():
        p.requires_grad_(True)


@functools.cache
def _processor(model_type: str):
    name = PROCESSORS[model_type]
    try:
        return getattr(hf._transformers(), name)()  # default settings: nothing is downloaded
    except ImportError as exc:  # transformers' image processors need torchvision
        raise DependencyError(f"hf-config:{model_type}'s post-processing ({name}) needs a library that is not "
                              f"installed here ({first_line(exc)}); pip install 'edgeprune[zoo]'") from None


class HFDenseOutputs(nn.Module):
    """The HF detector before post-processing: pixels [B, C, H, W] -> (logits, pred_boxes)."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf_model = hf_model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.hf_model(pixel_values=x)
        return out.logits, out.pred_boxes


class HFDetector(nn.Module):
    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf_model = hf_model
        _trainable_backbone(hf_model)

    @property
    def config(self):
        return self.hf_model.config

    @property
    def backbone(self) -> nn.Module:
        """The features before the detection transformer's heads (what feature distillation matches): DETR's
        projection of its CNN features, YOLOS's last LayerNorm."""
        model = self.hf_model
        return model.model.input_projection if hasattr(model, "model") else model.vit.layernorm

    def export_module(self) -> nn.Module:
        return HFDenseOutputs(self.hf_model)

    def forward(self, images, targets: list[dict] | None = None):
        x = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
        height, width = x.shape[-2:]
        if not self.training:
            out = self.hf_model(pixel_values=x)
            return self._detections(out.logits, out.pred_boxes, height, width)
        if targets is None:
            raise ModelError("an HF detector in train mode needs targets: model(images, targets)")
        out = self.hf_model(pixel_values=x, labels=_hf_labels(targets, height, width))
        cfg = self.config
        weights = {"loss_ce": 1.0, "loss_bbox": cfg.bbox_loss_coefficient, "loss_giou": cfg.giou_loss_coefficient}
        return {k: v * weights[_AUX_SUFFIX.sub("", k)] for k, v in out.loss_dict.items() if _AUX_SUFFIX.sub("", k) in weights}

    def _detections(self, logits: torch.Tensor, pred_boxes: torch.Tensor, height: int, width: int) -> list[dict]:
        outputs = SimpleNamespace(logits=logits, pred_boxes=pred_boxes)
        found = _processor(self.config.model_type).post_process_object_detection(
            outputs, threshold=0.0, target_sizes=[(height, width)] * len(logits))
        limit = torch.tensor([width, height, width, height], dtype=pred_boxes.dtype, device=pred_boxes.device)
        return [{"boxes": d["boxes"].clamp(min=0).minimum(limit), "scores": d["scores"], "labels": d["labels"] + 1}
                for d in found]


def _hf_labels(targets: list[dict], height: int, width: int) -> list[dict]:
    """HF's labels: per image ``class_labels`` (our label - 1) and ``boxes`` as cx, cy, w, h normalised by the size."""
    out = []
    for t in targets:
        boxes = t["boxes"].float().reshape(-1, 4)
        size = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
        cxcywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / size
        out.append({"class_labels": t["labels"].reshape(-1).long() - 1, "boxes": cxcywh})
    return out


def _defaults(model_type: str, in_channels: int, options: dict) -> tuple[dict, dict]:
    """(config defaults, options): DETR's backbone built for ``in_channels`` unless the options give its channels."""
    if model_type == "yolos":
        return YOLOS_DEFAULTS, options
    backbone = options.get("backbone_config")
    if isinstance(backbone, dict) and "num_channels" not in backbone:
        options = {**options, "backbone_config": {**backbone, "num_channels": in_channels}}
    return {**DETR_DEFAULTS, "backbone_config": {**DETR_BACKBONE, "num_channels": in_channels}}, options


def create(ref: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> tuple[HFDetector, dict]:
    """``hf-config:detr`` / ``hf-config:yolos``: the detector and its build extras (``hf_config``, ``hf_class``)."""
    model_type = ref.strip().lower()
    what = f"hf-config:{model_type}"
    if num_classes < 2:
        raise ConfigError(f"{what} needs num_classes >= 2 (the background and at least one class), got {num_classes}")
    defaults, options = _defaults(model_type, in_channels, options)
    wrapped, extras = hf.from_model_type(model_type, num_classes - 1, in_channels, image_size, options,
                                         head=HEADS[model_type], defaults=defaults, what=what)
    return check_detector(HFDetector(wrapped.hf_model), what, in_channels, image_size), extras


def from_build(build: dict) -> HFDetector:
    """The untrained detector a checkpoint's ``hf_config`` describes (offline; weights come from the state_dict)."""
    return HFDetector(hf.from_build(build).hf_model)


__all__ = ["HEADS", "DETR_DEFAULTS", "YOLOS_DEFAULTS", "HFDetector", "HFDenseOutputs", "handles", "is_detector_build",
           "create", "from_build"]
