"""Semantic segmentation: per-pixel class logits [B, C, h, w] against masks [B, H, W] (255 = ignore).

Masks may come as [B, 1, H, W] (torchvision's ``PILToTensor`` of a mask image). A model with one output channel is a
binary segmenter (its foreground logit, trained with a sigmoid, as ``segmentation_models_pytorch`` with ``classes=1``):
its logit z counts as the two classes' logits [0, z], so cross-entropy is the sigmoid's binary cross-entropy, class 1
is z > 0 and masks hold 0 and 1. Outputs may be a tensor, torchvision's ``{"out", "aux"}`` dict (the auxiliary head adds half its loss, as in
torchvision's reference recipe) or an object with ``logits`` (HF SegFormer, at a quarter of the resolution:
logits are resized to the mask). mIoU is the primary metric (classes absent from both prediction and truth
are left out of the mean), with pixel accuracy; both come from per-image confusion matrices, so a bootstrap
over images gives their intervals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeprune.errors import DataError, ModelError
from edgeprune.tasks.base import Task

IGNORE = 255


def dense_logits(output, size=None) -> torch.Tensor:
    """The main [B, C, h, w] logits of a segmentation output, resized (bilinear) to ``size`` when given."""
    if isinstance(output, dict):
        out = output.get("out", output.get("logits"))
    else:
        out = output if isinstance(output, torch.Tensor) else getattr(output, "logits", None)
        if out is None and isinstance(output, (tuple, list)) and output:
            out = output[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        what = tuple(out.shape) if isinstance(out, torch.Tensor) else type(output).__name__
        raise ModelError(f"a segmentation model must return logits [batch, classes, h, w] (a tensor, a dict with 'out' "
                         f"or an output with .logits), got {what}")
    if size is not None and tuple(out.shape[-2:]) != tuple(size):
        out = F.interpolate(out, size=tuple(size), mode="bilinear", align_corners=False)
    if out.shape[1] == 1:  # a binary segmenter's foreground logit z: softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]
        out = torch.cat([torch.zeros_like(out), out], 1)
    return out


def plain_masks(y: torch.Tensor) -> torch.Tensor:
    """Masks [B, H, W]; a [B, 1, H, W] mask image loses its channel dimension."""
    return y[:, 0] if y.ndim == 4 and y.shape[1] == 1 else y


def _check_classes(y: torch.Tensor, classes: int) -> torch.Tensor:
    """The mask's pixels that count (not ignored); DataError when one holds a class the model does not predict."""
    keep = y != IGNORE
    if keep.any() and int(y[keep].max()) >= classes:
        raise DataError(f"a mask holds class {int(y[keep].max())} but the model predicts {classes} classes "
                        f"(0..{classes - 1}, {IGNORE} = ignore)")
    return keep


class Segmentation(Task):
    name = "segmentation"
    metric = "miou"
    label = "mIoU"
    resamples = 500

    def __init__(self, aux_weight: float = 0.5):
        self.aux_weight = float(aux_weight)

    def check_target(self, x, y, what):
        y = plain_masks(y) if isinstance(y, torch.Tensor) else y
        if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.ndim != 3 or y.shape[0] != x.shape[0]:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise DataError(f"{what} yields masks {got}; segmentation expects integer masks [batch, H, W] or [batch, 1, H, W] "
                            f"({x.shape[0]} per batch, class per pixel, {IGNORE} = ignore)")
        if tuple(y.shape[-2:]) != tuple(x.shape[-2:]):
            raise DataError(f"{what} yields masks of size {tuple(y.shape[-2:])} for images of size {tuple(x.shape[-2:])}; "
                            "expected one mask pixel per image pixel")
        return y.long()

    def _ce(self, logits, y):
        y = plain_masks(y)
        logits = dense_logits(logits, y.shape[-2:]).float()
        try:
            return F.cross_entropy(logits, y, ignore_index=IGNORE)
        except IndexError:  # a class the model does not predict ("Target 8 is out of bounds")
            _check_classes(y, logits.shape[1])
            raise

    def loss(self, output, y):
        loss = self._ce(output, y)
        if isinstance(output, dict) and isinstance(output.get("aux"), torch.Tensor) and self.aux_weight:
            loss = loss + self.aux_weight * self._ce(output["aux"], y)
        return loss

    def distil(self, student, teacher, y, alpha, temperature):
        s, t = dense_logits(student, y.shape[-2:]).float(), dense_logits(teacher, y.shape[-2:]).float()
        kl = F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1), log_target=True,
                      reduction="none").sum(1).mean()
        return alpha * self.loss(student, y) + (1.0 - alpha) * temperature * temperature * kl

    def targets_from(self, output, x):
        return dense_logits(output, x.shape[-2:]).argmax(1)

    def example_statistics(self, output, y):
        y = plain_masks(y)
        logits = dense_logits(output, y.shape[-2:])
        classes = logits.shape[1]
        pred, keep = logits.argmax(1), _check_classes(y, classes)
        image = torch.arange(len(y), device=y.device).view(-1, 1, 1).expand_as(y)
        cell = (image * classes + y) * classes + pred
        counts = torch.bincount(cell[keep], minlength=len(y) * classes * classes)
        return counts.view(len(y), classes, classes).cpu()  # per image: [truth, prediction] confusion

    def join(self, parts):
        classes = max(p.shape[1] for p in parts)
        return torch.cat([F.pad(p, (0, classes - p.shape[2], 0, classes - p.shape[1])) for p in parts])

    def reduce(self, values, index=None):
        confusion = (values if index is None else values[torch.as_tensor(index)]).sum(0).double()
        hit = confusion.diag()
        union = confusion.sum(0) + confusion.sum(1) - hit
        seen = union > 0
        miou = float((hit[seen] / union[seen]).mean()) if seen.any() else float("nan")
        total = confusion.sum()
        return {"miou": miou, "pixel_acc": float(hit.sum() / total) if total > 0 else float("nan")}

    def check_output(self, model, output, example, data):
        logits = dense_logits(output)
        if data.num_classes is not None and logits.shape[1] != data.num_classes:
            raise ModelError(f"{type(model).__name__} predicts {logits.shape[1]} classes per pixel but the data has "
                             f"{data.num_classes} (background included)")
