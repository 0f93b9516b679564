"""In-memory image datasets and :class:`Splits`, the train/val/test bundle that ``load(spec)`` returns.

:class:`ImageDataset` keeps every image in one tensor and hands out whole batches through
``__getitems__``, which torch's DataLoader calls when it auto-batches; augmentation and normalisation
run once per batch on tensors instead of once per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch.utils.data import Dataset

from edgeprune.data.bundle import SPLIT_NAMES, Data  # noqa: F401  (re-exported)
from edgeprune.data.loaders import make_loader  # noqa: F401  (re-exported)
from edgeprune.data.transforms import random_crop, random_hflip, to_unit_float
from edgeprune.errors import DataError, check_positive


class InMemoryImages:
    """What the in-memory image datasets share: ``images`` ``[N, C, H, W]`` and their shape facts, the per-batch
    normalisation with ``mean``/``std``, and one example read as a batch of one (``__getitems__``)."""

    images: torch.Tensor
    stacks_batches = True  # ``__getitems__`` returns one stacked batch, not torch's list of samples

    def _set_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        # x_norm = x01 * scale + shift, i.e. (x01 - mean) / std in one fused multiply-add
        std_t = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale = 1.0 / std_t
        self._shift = -torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1) / std_t

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self._shift, to_unit_float(x), self._scale)

    def _batch_of_one(self, index: int):
        """``__getitems__`` of the example at ``index`` (a negative one counts from the end)."""
        i, n = int(index), len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} examples")
        return self.__getitems__([i % n])

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def height(self) -> int:
        return int(self.images.shape[2])

    @property
    def width(self) -> int:
        return int(self.images.shape[3])

    @property
    def image_size(self) -> int:
        """Side of the (square) images; the height if they are not square."""
        return self.height


class ImageDataset(InMemoryImages, Dataset):
    """Images and labels held in memory, normalised (and optionally augmented) on the fly.

    Args:
        images: uint8 ``[N, C, H, W]`` (pixels 0..255) or float ``[N, C, H, W]`` already in [0, 1].
        labels: integer class labels ``[N]`` (stored as int64).
        mean, std: per-channel statistics in the [0, 1] scale, applied after augmentation.
        augment: whether ``crop_padding``/``hflip`` augmentation is applied when items are read.
        crop_padding: zero padding (pixels) of the random crop; 0 disables the crop.
        hflip: random horizontal flip with probability 1/2.
        seed: seed of the generator that drives augmentation (see :meth:`reseed`).
        num_classes: number of classes; defaults to ``labels.max() + 1`` (pass it for subsets).
        classes: optional class names, index = label.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        augment: bool = False,
        crop_padding: int = 0,
        hflip: bool = False,
        seed: int = 0,
        num_classes: int | None = None,
        classes: Sequence[str] | None = None,
    ):
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels).to(torch.int64)
        if images.ndim != 4:
            raise DataError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(f"labels must be [N] with N={images.shape[0]}, got shape {tuple(labels.shape)}")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise DataError(f"mean/std need {channels} values (one per channel), got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise DataError(f"std values must be > 0, got {tuple(std)}")
        check_positive("crop_padding", crop_padding, allow_zero=True)
        if num_classes is None:
            num_classes = int(labels.max()) + 1 if labels.numel() else 0
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise DataError(f"labels must be in [0, {num_classes}), got range [{int(labels.min())}, {int(labels.max())}]")
        self.images = images
        self.labels = labels
        self._set_stats(mean, std)
        self.augment = bool(augment)
        self.crop_padding = int(crop_padding)
        self.hflip = bool(hflip)
        self.seed = int(seed)
        self.num_classes = int(num_classes)
        self.classes = list(classes) if classes is not None else [str(i) for i in range(self.num_classes)]
        self.generator = torch.Generator().manual_seed(self.seed)

    # -- reading ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self._batch_of_one(index)
        return x[0], int(y[0])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once: ``(x float [B, C, H, W], y int64 [B])``.

        Equal to stacking :meth:`__getitem__` when augmentation is off; with augmentation on, the
        random draws depend on how items are grouped into batches.
        """
        idx = torch.as_tensor(indices, dtype=torch.long)
        x = self.images[idx]
        if self.augment:
            x = random_crop(x, self.crop_padding, self.generator)
            if self.hflip:
                x = random_hflip(x, self.generator)
        return self._normalise(x), self.labels[idx]

    # -- cheap derived datasets -------------------------------------------------------------------
    def _derive(self, images: torch.Tensor, labels: torch.Tensor, augment: bool) -> "ImageDataset":
        return ImageDataset(
            images, labels, self.mean, self.std, augment=augment, crop_padding=self.crop_padding,
            hflip=self.hflip, seed=self.seed, num_classes=self.num_classes, classes=self.classes,
        )

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "ImageDataset":
        """The examples at ``indices`` (rows are copied once; statistics and settings are kept)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._derive(self.images[idx], self.labels[idx], self.augment)

    def with_augment(self, augment: bool) -> "ImageDataset":
        """The same examples (shared storage) with augmentation switched on or off."""
        return self._derive(self.images, self.labels, augment)

    def reseed(self, seed: int) -> "ImageDataset":
        """Restart the augmentation generator from ``seed`` (returns self)."""
        self.seed = int(seed)
        self.generator.manual_seed(self.seed)
        return self

    def __repr__(self) -> str:
        aug = f"crop_padding={self.crop_padding}, hflip={self.hflip}" if self.augment else "off"
        return (f"ImageDataset(n={len(self)}, shape={tuple(self.images.shape[1:])}, "
                f"classes={self.num_classes}, augment={aug})")


@dataclass(kw_only=True)
class Splits(Data):
    """train / val / test datasets of one data spec (what :func:`~edgeprune.data.load` returns): :class:`ImageDataset` s,
    or for segmentation / detection specs (``task`` set) the datasets of :mod:`edgeprune.data.dense`.

    ``val`` is carved from the training data (selection happens on it); ``test`` is the official
    test split and is meant to be evaluated once per final model. Besides :class:`Data`'s fields it keeps
    the class names, the normalisation statistics and how the split was made.
    """

    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seed: int = 0
    val_fraction: float = 0.1
    limit: int | None = None

    def describe(self) -> dict:
        """A JSON-ready summary (sizes, shapes, statistics, seed) to store next to results."""
        return {
            "name": self.name, "num_classes": self.num_classes, "in_channels": self.in_channels,
            "image_size": self.image_size, "train": len(self.train), "val": len(self.val),
            "test": len(self.test) if self.test is not None else 0, "mean": list(self.mean), "std": list(self.std),
            "seed": self.seed, "val_fraction": self.val_fraction, "limit": self.limit,
            "augment": bool(getattr(self.train, "augment", False)), "task": self.task,
        }


@dataclass
class RawData:
    """What a dataset reader returns: the official train and test pools, before any split.

    ``mean``/``std`` are the dataset's standard constants, or None to compute them from the
    training portion. The augmentation fields are the dataset's defaults.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    augment: bool = False
    crop_padding: int = 0
    hflip: bool = False
    notes: dict = field(default_factory=dict)
