"""In-memory datasets for dense prediction and :func:`task_splits`, which turns their pools into :class:`Splits`.

Batches follow the one contract of edgeprune's tasks: ``(x, y)`` with ``x`` float ``[B, C, H, W]`` normalised
like :class:`~edgeprune.data.ImageDataset`, and

* segmentation (:class:`SegmentationDataset`): ``y`` int64 ``[B, H, W]``, a class per pixel, 0 = background,
  :data:`IGNORE` (255) = not scored;
* detection (:class:`DetectionDataset`): ``y`` a list of B dicts ``{"boxes": float32 [N, 4] (x1, y1, x2, y2)
  in pixels of x, "labels": int64 [N]}`` with labels in 1..num_classes-1 (0 is background) and N >= 0.

Whole batches come from ``__getitems__`` (one call per batch with :func:`~edgeprune.data.make_loader`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from edgeprune.data.base import InMemoryImages, Splits
from edgeprune.data.splits import SALT_VAL, limit_indices, stratified_split
from edgeprune.errors import DataError

IGNORE = 255


class _Images(InMemoryImages, Dataset):
    """uint8 images ``[N, C, H, W]`` normalised per batch; no augmentation (``augment`` is always False).

    Subclasses check their targets unless built with ``checked=True`` (datasets derived from a checked one).
    """

    task: str = ""
    augment = False

    def __init__(self, images: torch.Tensor, mean: Sequence[float], std: Sequence[float], *, num_classes: int,
                 classes: Sequence[str] | None = None):
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise DataError(f"images must be uint8 [N, C, H, W], got {images.dtype} of shape {tuple(images.shape)}")
        if len(mean) != images.shape[1] or len(std) != images.shape[1] or any(s <= 0 for s in std):
            raise DataError(f"mean/std need {images.shape[1]} values (std > 0), got {tuple(mean)} and {tuple(std)}")
        self.images = images
        self._set_stats(mean, std)
        self.num_classes = int(num_classes)
        self.classes = list(classes) if classes is not None else [str(k) for k in range(self.num_classes)]
        if len(self.classes) != self.num_classes:
            raise DataError(f"{len(self.classes)} class names for {self.num_classes} classes; they must match")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int):
        x, y = self._batch_of_one(index)
        return x[0], y[0]

    def subset(self, indices) -> "_Images":
        """The examples at ``indices`` (statistics and class names kept; all of them in order: shared storage)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        every = len(idx) == len(self) and bool((idx == torch.arange(len(self))).all())
        return self._take(None if every else idx, self.mean, self.std)

    def with_stats(self, mean: Sequence[float], std: Sequence[float]) -> "_Images":
        """The same examples normalised with ``mean``/``std``."""
        return self._take(None, mean, std)

    def reseed(self, seed: int) -> "_Images":
        """Nothing to reseed (no augmentation); returns self."""
        return self

    def _take(self, idx: torch.Tensor | None, mean, std) -> "_Images":
        """A dataset of the examples at ``idx`` (None: all, sharing storage) normalised with ``mean``/``std``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, shape={tuple(self.images.shape[1:])}, classes={self.num_classes})"


class SegmentationDataset(_Images):
    """Images with uint8 masks ``[N, H, W]`` of class indices < ``num_classes`` or :data:`IGNORE`."""

    task = "segmentation"

    def __init__(self, images, masks, mean, std, *, num_classes: int, classes: Sequence[str] | None = None,
                 checked: bool = False):
        super().__init__(images, mean, std, num_classes=num_classes, classes=classes)
        masks = torch.as_tensor(masks)
        if masks.dtype != torch.uint8 or masks.shape != (len(self), *self.images.shape[2:]):
            raise DataError(f"masks must be uint8 {(len(self), *self.images.shape[2:])}, got {masks.dtype} {tuple(masks.shape)}")
        bad = None if checked else (masks >= self.num_classes) & (masks != IGNORE)
        if bad is not None and bool(bad.any()):
            raise DataError(f"mask value {int(masks[bad][0])} is not a class of 0..{self.num_classes - 1} nor {IGNORE} (ignore)")
        self.masks = masks

    def __getitems__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._normalise(self.images[idx]), self.masks[idx].long()

    def _take(self, idx, mean, std) -> "SegmentationDataset":
        images, masks = (self.images, self.masks) if idx is None else (self.images[idx], self.masks[idx])
        return SegmentationDataset(images, masks, mean, std, num_classes=self.num_classes, classes=self.classes, checked=True)


class DetectionDataset(_Images):
    """Images with per-image ``boxes`` (float32 ``[N, 4]`` xyxy pixels) and ``labels`` (int64 ``[N]``, 1..K)."""

    task = "detection"

    def __init__(self, images, boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], mean, std, *,
                 num_classes: int, classes: Sequence[str] | None = None, checked: bool = False):
        super().__init__(images, mean, std, num_classes=num_classes, classes=classes)
        if len(boxes) != len(self) or len(labels) != len(self):
            raise DataError(f"need boxes and labels for each of {len(self)} images, got {len(boxes)} and {len(labels)}")
        if checked:  # lists of a checked dataset: shared as they are
            self.boxes, self.labels = list(boxes), list(labels)
            return
        h, w = self.images.shape[2:]
        self.boxes = [_table(b, i, 4, torch.float32, "boxes") for i, b in enumerate(boxes)]
        self.labels = [_table(t, i, None, torch.int64, "labels") for i, t in enumerate(labels)]
        counts = [len(b) for b in self.boxes]
        if counts != [len(t) for t in self.labels]:
            i = next(i for i, (b, t) in enumerate(zip(self.boxes, self.labels)) if len(b) != len(t))
            raise DataError(f"image {i} has {len(self.boxes[i])} boxes but {len(self.labels[i])} labels; they must match")
        if sum(counts):
            owner = torch.repeat_interleave(torch.arange(len(self)), torch.tensor(counts))
            b, t = torch.cat(self.boxes), torch.cat(self.labels)
            bad = (t < 1) | (t >= self.num_classes)
            if bool(bad.any()):
                raise DataError(f"image {int(owner[bad][0])} has label {int(t[bad][0])}; labels are 1..{self.num_classes - 1} "
                                "(0 is background)")
            bad = ~((b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))
            if bool(bad.any()):
                raise DataError(f"image {int(owner[bad][0])} has box {b[bad][0].tolist()} outside its {w}x{h} pixels or "
                                "of no area; boxes are (x1, y1, x2, y2) with 0 <= x1 < x2 <= width, 0 <= y1 < y2 <= height")

    def target(self, i: int) -> dict:
        return {"boxes": self.boxes[i].clone(), "labels": self.labels[i].clone()}

    def __getitems__(self, indices) -> tuple[torch.Tensor, list[dict]]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._normalise(self.images[idx]), [self.target(int(i)) for i in idx]

    def _take(self, idx, mean, std) -> "DetectionDataset":
        if idx is None:
            return DetectionDataset(self.images, self.boxes, self.labels, mean, std, num_classes=self.num_classes,
                                    classes=self.classes, checked=True)
        rows = idx.tolist()
        return DetectionDataset(self.images[idx], [self.boxes[i] for i in rows], [self.labels[i] for i in rows], mean, std,
                                num_classes=self.num_classes, classes=self.classes, checked=True)


def _table(values, i: int, width: int | None, dtype: torch.dtype, what: str) -> torch.Tensor:
    """``values`` of image ``i`` as ``[N, width]`` (``[N]`` for width None); empty input gives N = 0."""
    t = torch.as_tensor(values, dtype=dtype)
    shape = (0, width) if width else (0,)
    if t.numel() == 0:
        return t.reshape(shape)
    if t.ndim != len(shape) or (width and t.shape[1] != width):
        expected = "[N, 4] (x1, y1, x2, y2)" if width else "[N]"
        raise DataError(f"image {i} has {what} of shape {tuple(t.shape)}; expected {expected}")
    return t


def uint8_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1], rounded to 6 digits) of uint8 ``images`` from their value histogram."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        total = max(float(counts.sum()), 1.0)
        m = float((counts * values).sum()) / total
        s = max(float((counts * values.square()).sum()) / total - m * m, 0.0) ** 0.5
        mean.append(round(m, 6))
        std.append(round(s, 6) if s > 1e-6 else 1.0)
    return tuple(mean), tuple(std)


def limit_pools(n_train: int, n_test: int, limit: int | None, test_limit: int | None,
                n_val: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices kept by ``limit`` / ``test_limit`` (as :func:`~edgeprune.data.load`: fixed random subsets, independent of
    the run's seed; a no-op on its own output). With a given val pool, ``limit`` is shared by train and val in
    proportion to their sizes."""
    total = n_train + n_val
    share = n_val if limit is None or limit >= total else min(n_val, max(1, round(limit * n_val / total)))
    train_cap = None if limit is None else max(limit - share, 1)
    keep_train = limit_indices(np.zeros(n_train), np.zeros(0), train_cap)[0]
    keep_val = limit_indices(np.zeros(n_val), np.zeros(0), None if limit is None else share)[0]
    keep_test = limit_indices(np.zeros(0), np.zeros(n_test), limit, test_limit)[1]
    return keep_train, keep_val, keep_test


def task_splits(name: str, pool: _Images, test: _Images, *, seed: int, val_fraction: float, limit: int | None,
                test_limit: int | None, val: _Images | None = None) -> Splits:
    """:class:`Splits` of ``pool`` (train+val) and ``test``: ``val`` carved at random from the pool with ``seed``
    (unless given), ``limit``/``test_limit`` applied as :func:`limit_pools`; mean/std computed on the train part."""
    keep_train, keep_val, keep_test = limit_pools(len(pool), len(test), limit, test_limit, 0 if val is None else len(val))
    pool, test = pool.subset(keep_train), test.subset(keep_test)
    if val is None:
        train_idx, val_idx = stratified_split(np.zeros(len(pool)), val_fraction, seed, salt=SALT_VAL)
        train, val = pool.subset(train_idx), pool.subset(val_idx)
    else:
        train, val = pool, val.subset(keep_val)
    mean, std = uint8_stats(train.images)
    train, val, test = (part.with_stats(mean, std) for part in (train, val, test))
    return Splits(train=train, val=val, test=test, name=name, num_classes=train.num_classes,
                  input_shape=tuple(int(d) for d in train.images.shape[1:]), task=train.task, classes=list(train.classes),
                  mean=mean, std=std, seed=int(seed), val_fraction=float(val_fraction), limit=limit)
