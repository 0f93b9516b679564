"""A detector of a user's own, as people write one for a small edge task: a strided conv backbone, a 1x1 head
predicting per grid cell (objectness, box offsets and log sizes, class logits), the user's own loss, decoding
with torchvision's batched NMS in eval mode, and ``export_module()`` for the dense part a runtime runs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class GridHead(nn.Module):
    def __init__(self, det: "GridDet"):
        super().__init__()
        self.det = det

    def forward(self, x):
        return self.det.head(self.det.backbone(x))


class GridDet(nn.Module):
    STRIDE = 16

    def __init__(self, classes: int = 10, width: int = 32, in_channels: int = 1):
        super().__init__()
        self.classes = classes
        self.backbone = nn.Sequential(_block(in_channels, width // 2), _block(width // 2, width), _block(width, 2 * width),
                                      _block(2 * width, 2 * width))
        self.head = nn.Conv2d(2 * width, 5 + classes, 1)

    def export_module(self) -> nn.Module:
        return GridHead(self)

    def forward(self, x):
        raw = self.head(self.backbone(x))
        return raw if self.training else self.decode(raw, x.shape[-1])

    def decode(self, raw, size: int, threshold: float = 0.05, keep: int = 50):
        b, _, h, w = raw.shape
        ys, xs = torch.meshgrid(torch.arange(h, device=raw.device), torch.arange(w, device=raw.device), indexing="ij")
        out = []
        for r in raw:
            score = torch.sigmoid(r[0]) * r[5:].softmax(0).max(0).values
            label = r[5:].argmax(0) + 1
            cx, cy = (xs + torch.sigmoid(r[1])) * self.STRIDE, (ys + torch.sigmoid(r[2])) * self.STRIDE
            half_w, half_h = r[3].clamp(max=6).exp() * self.STRIDE / 2, r[4].clamp(max=6).exp() * self.STRIDE / 2
            boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1).clamp(0, size).view(-1, 4)
            score, label = score.reshape(-1), label.reshape(-1)
            chosen = torch.nonzero(score > threshold).flatten()
            chosen = chosen[batched_nms(boxes[chosen], score[chosen], label[chosen], 0.5)][:keep]
            out.append({"boxes": boxes[chosen], "scores": score[chosen], "labels": label[chosen]})
        return out


def grid_loss(raw, targets) -> torch.Tensor:
    """Objectness BCE over every cell; box offsets / log sizes (L1) and class CE on the cell holding a box's centre."""
    b, _, h, w = raw.shape
    stride = GridDet.STRIDE
    obj = torch.zeros(b, h, w, device=raw.device)
    box_loss, cls_loss, n = raw.new_zeros(()), raw.new_zeros(()), 0
    for i, t in enumerate(targets):
        if not len(t["boxes"]):
            continue
        boxes = t["boxes"].to(raw.device)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        gx, gy = (cx / stride).long().clamp(0, w - 1), (cy / stride).long().clamp(0, h - 1)
        obj[i, gy, gx] = 1.0
        cell = raw[i, :, gy, gx]  # [5 + K, n]
        want = torch.stack([cx / stride - gx, cy / stride - gy], 0).clamp(1e-3, 1 - 1e-3)
        size = torch.stack([(boxes[:, 2] - boxes[:, 0]) / stride, (boxes[:, 3] - boxes[:, 1]) / stride], 0).clamp(min=1e-3).log()
        box_loss = box_loss + F.l1_loss(torch.sigmoid(cell[1:3]), want, reduction="sum") + F.l1_loss(cell[3:5], size, reduction="sum")
        cls_loss = cls_loss + F.cross_entropy(cell[5:].T, t["labels"].to(raw.device) - 1, reduction="sum")
        n += len(boxes)
    obj_loss = F.binary_cross_entropy_with_logits(raw[:, 0], obj, pos_weight=torch.tensor(4.0, device=raw.device))
    return obj_loss + (box_loss + cls_loss) / max(n, 1)
