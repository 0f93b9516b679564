"""Ultralytics YOLO detectors (``yolo:yolov8n``, ``yolo:yolo11n``...) behind torchvision's detection API.

The optional ``yolo`` extra (Ultralytics, AGPL-3.0: imported only here, when a ``yolo:`` spec is built). The
network comes from the package's bundled YAML with random weights, ``nc`` = num_classes - 1 (YOLO has no
background class) and ``ch`` = in_channels. :class:`YoloDetector` keeps it under ``.yolo`` (parameters
``yolo.model.<i>...``) and adds what torchvision's API needs:

- train mode, ``model(images, targets)``: Ultralytics' own ``v8DetectionLoss`` (its default gains box 7.5,
  cls 0.5, dfl 1.5) on our targets (labels - 1, boxes as normalised xywh), returned as
  ``{"box_loss", "cls_loss", "dfl_loss"}`` per image: Ultralytics multiplies by the batch size for its
  nominal-batch recipe, here the mean is kept so the scale matches torchvision's detectors;
- eval mode, ``model(images)``: per image, every (anchor, class) score above ``score_thresh``, the top
  ``candidates``, class-wise NMS at ``nms_thresh`` (torchvision.ops.batched_nms), at most
  ``detections_per_img``; labels + 1;
- :meth:`YoloDetector.export_module`: the raw prediction [B, 4 + K, anchors] (xywh pixels, class sigmoids)
  before NMS, the tensor Ultralytics exports to ONNX.

Images are zero-padded on the right and bottom to a multiple of the largest stride (32), as Ultralytics'
letterbox would; boxes stay in the input's pixels.

Every CSP block that splits its first conv's output in two (C2f, C3k2, C2PSA: ``cv1(x).chunk(2, 1)``) is
rebuilt as :class:`SplitStage`, the same function with ``cv1`` cut into two convs: torch-pruning cannot map
channels through a chunk, and through two convs every part of the block can lose channels (structured pruning).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.models._common import first_line
from edgeprune.models.adapters import import_optional
from edgeprune.models.detection import check_detector

OPTIONS = {"score_thresh": 0.001, "nms_thresh": 0.7, "detections_per_img": 100, "candidates": 1000}


def _ultralytics(module: str):
    try:
        return import_optional(module)
    except DependencyError:
        raise DependencyError("yolo: models need ultralytics (AGPL-3.0), not installed/importable here; "
                              "install edgeprune[yolo] or pip install 'ultralytics>=8.3'") from None


def _pad(x: torch.Tensor, stride: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % stride, 0, -h % stride)) if h % stride or w % stride else x


def _out_slice(layer: nn.Module, start: int, stop: int) -> nn.Module:
    """A copy of ``layer`` (a conv, its BatchNorm and activation) producing only output channels start..stop-1."""
    part = copy.deepcopy(layer)
    with torch.no_grad():
        for m in part.modules():
            if isinstance(m, nn.Conv2d):
                m.weight = nn.Parameter(m.weight[start:stop].clone())
                m.bias = None if m.bias is None else nn.Parameter(m.bias[start:stop].clone())
                m.out_channels = stop - start
            elif isinstance(m, nn.BatchNorm2d):
                for name in ("weight", "bias"):
                    setattr(m, name, nn.Parameter(getattr(m, name)[start:stop].clone()))
                for name in ("running_mean", "running_var"):
                    setattr(m, name, getattr(m, name)[start:stop].clone())
                m.num_features = stop - start
    return part


class SplitStage(nn.Module):
    """A CSP block ``y = [a, b] = cv1(x).chunk(2)``, then ``m`` on b, ``cv2(cat(y))``, with ``cv1`` as two convs
    (``cv1a`` -> a, ``cv1b`` -> b): C2f/C3k2 (``chain``: every module of the list ``m`` runs on the last part and
    its output joins the concatenation) or C2PSA (``m`` replaces b). Same outputs, no chunk to trace."""

    def __init__(self, block: nn.Module, chain: bool):
        super().__init__()
        half = block.cv1.conv.out_channels // 2
        self.cv1a, self.cv1b = _out_slice(block.cv1, 0, half), _out_slice(block.cv1, half, 2 * half)
        self.m, self.cv2, self.chain = block.m, block.cv2, chain
        for name in ("f", "i", "type", "np"):  # Ultralytics' routing of the layer's inputs and saved outputs
            if hasattr(block, name):
                setattr(self, name, getattr(block, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1a(x), self.cv1b(x)]
        if self.chain:
            y.extend(m(y[-1]) for m in self.m)
        else:
            y[1] = self.m(y[1])
        return self.cv2(torch.cat(y, 1))


def split_stages(yolo: nn.Module) -> int:
    """Replace every C2f, C3k2 and C2PSA layer of ``yolo.model`` (whose forward is the library's own) by a
    :class:`SplitStage` in place; the number replaced."""
    block = _ultralytics("ultralytics.nn.modules.block")
    kinds = {block.C2f.forward: True, block.C2PSA.forward: False}
    count = 0
    for i, layer in enumerate(yolo.model):
        chain = kinds.get(type(layer).forward)
        if chain is not None and layer.cv1.conv.out_channels % 2 == 0:
            yolo.model[i] = SplitStage(layer, chain)
            count += 1
    return count


class _RawPrediction(nn.Module):
    """The YOLO network in eval mode up to its decoded, pre-NMS prediction [B, 4 + K, anchors]."""

    def __init__(self, yolo: nn.Module, stride: int):
        super().__init__()
        self.yolo, self.stride = yolo, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.yolo(_pad(x, self.stride))
        return out[0] if isinstance(out, (tuple, list)) else out


class YoloDetector(nn.Module):
    def __init__(self, yolo: nn.Module, score_thresh: float = 0.001, nms_thresh: float = 0.7,
                 detections_per_img: int = 100, candidates: int = 1000):
        super().__init__()
        self.yolo = yolo
        self.score_thresh, self.nms_thresh = float(score_thresh), float(nms_thresh)
        self.detections_per_img, self.candidates = int(detections_per_img), int(candidates)
        self.max_stride = int(max(yolo.stride))

    @property
    def backbone(self) -> nn.Module:
        """The last layer of YOLO's backbone (SPPF in v8/11): the features distillation matches."""
        return self.yolo.model[len(self.yolo.yaml["backbone"]) - 1]

    def export_module(self) -> nn.Module:
        return _RawPrediction(self.yolo, self.max_stride)

    def forward(self, images, targets: list[dict] | None = None):
        x = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
        height, width = x.shape[-2:]
        x = _pad(x, self.max_stride)
        if not self.training:
            return self._detections(self.yolo(x)[0], height, width)
        if targets is None:
            raise ModelError("a YOLO detector in train mode needs targets: model(images, targets)")
        loss_fn = _ultralytics("ultralytics.utils.loss").v8DetectionLoss(self.yolo)
        loss, _ = loss_fn(self.yolo(x), self._batch(targets, x))
        loss = loss / len(x)
        return dict(zip(("box_loss", "cls_loss", "dfl_loss"), loss.unbind()))

    @staticmethod
    def _batch(targets: list[dict], x: torch.Tensor) -> dict:
        """Ultralytics' batch dict: image index, class (label - 1), box as xywh normalised by the padded size."""
        size = torch.tensor([x.shape[-1], x.shape[-2]] * 2, dtype=torch.float32, device=x.device)
        boxes = torch.cat([t["boxes"].float().reshape(-1, 4) for t in targets])
        xywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1) / size
        labels = torch.cat([t["labels"].reshape(-1) for t in targets])
        index = torch.cat([torch.full((len(t["labels"]),), i, dtype=torch.float32) for i, t in enumerate(targets)])
        return {"batch_idx": index.to(x.device), "cls": (labels - 1).float().view(-1, 1), "bboxes": xywh}

    def _detections(self, pred: torch.Tensor, height: int, width: int) -> list[dict]:
        ops = import_optional("torchvision.ops")
        out = []
        for p in pred:  # [4 + K, anchors]
            xywh, scores = p[:4].T, p[4:].T
            boxes = torch.cat([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
            boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                                 boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], 1)
            flat = scores.flatten()
            keep = (flat > self.score_thresh).nonzero().squeeze(1)
            keep = keep[flat[keep].topk(min(self.candidates, len(keep))).indices]
            anchor, label = keep // scores.shape[1], keep % scores.shape[1]
            chosen = ops.batched_nms(boxes[anchor], flat[keep], label, self.nms_thresh)[: self.detections_per_img]
            out.append({"boxes": boxes[anchor[chosen]], "scores": flat[keep][chosen], "labels": label[chosen] + 1})
        return out


def create_yolo(name: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> YoloDetector:
    """``yolo:<name>``: the bundled ``<name>.yaml`` (yolov8n..x, yolo11n..x, ...) with random weights."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} for yolo:{name}; allowed: {', '.join(OPTIONS)}")
    tasks = _ultralytics("ultralytics.nn.tasks")
    file = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    try:
        recipe = tasks.yaml_model_load(file)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise ConfigError(f"unknown yolo model {name!r} ({first_line(exc)}); allowed: Ultralytics detection YAMLs "
                          "such as yolov8n, yolov8s, yolo11n, yolo11s") from None
    recipe["nc"] = num_classes - 1  # set in the recipe: no "overriding nc" log line
    try:
        yolo = tasks.DetectionModel(recipe, ch=in_channels, nc=num_classes - 1, verbose=False)
    except Exception as exc:  # noqa: BLE001  (a YAML for another architecture fails in Ultralytics' own ways)
        raise ModelError(f"yolo:{name} cannot be built ({first_line(exc)})") from None
    return check_detector(detector_of(yolo, f"yolo:{name}", **options), f"yolo:{name}", in_channels, image_size)


def detector_of(yolo: nn.Module, what: str, **options) -> YoloDetector:
    """An Ultralytics ``DetectionModel`` (built here, or the user's own: ``YOLO("best.pt").model``, changed in place)
    as a :class:`YoloDetector`: its classes 0..nc-1 are labels 1..nc, its loss takes Ultralytics' default gains, its
    CSP blocks are split (:func:`split_stages`)."""
    head_types = _ultralytics("ultralytics.nn.modules.head")
    cfg = _ultralytics("ultralytics.cfg")
    head = yolo.model[-1]
    end2end = bool(getattr(head, "end2end", False))
    if type(head) is not head_types.Detect or end2end:
        raise ConfigError(f"{what} has a {type(head).__name__} head{' (end-to-end)' if end2end else ''}; "
                          "allowed: plain detection models (Detect head with NMS) such as yolov8n, yolo11n")
    yolo.args = SimpleNamespace(box=cfg.DEFAULT_CFG.box, cls=cfg.DEFAULT_CFG.cls, dfl=cfg.DEFAULT_CFG.dfl)
    split_stages(yolo)
    return YoloDetector(yolo, **options)
