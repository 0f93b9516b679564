""":class:`Data`, the one data bundle of the public API: train / val / test plus the facts a model needs.

Each split is a dataset (e.g. an :class:`~edgeprune.data.ImageDataset`) or a user's
``torch.utils.data.DataLoader`` yielding ``(x, y)`` tensor batches; ``data.load(spec)`` returns the
:class:`~edgeprune.data.Splits` subclass, :meth:`Data.from_loaders` wraps a user's loaders.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from edgeprune.data.loaders import first_batch, make_loader
from edgeprune.errors import ConfigError

SPLIT_NAMES = ("train", "val", "test")
TASKS = ("classification", "segmentation", "detection", "regression")


def _check_source(value, split: str) -> None:
    if value is None and split == "test":
        return
    if not isinstance(value, (DataLoader, Dataset)):
        allowed = "a DataLoader, a Dataset" + (" or None" if split == "test" else "")
        raise ConfigError(f"{split} data must be {allowed}, got {type(value).__name__}")


def _check_task(task) -> None:
    if task is not None and task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)} or None (classification or unknown), got {task!r}")


@dataclass
class Data:
    """train / val / test data (datasets or DataLoaders) with the dataset's name and shape facts.

    ``val`` is for selection (early stopping, best epoch); ``test`` (may be None) is evaluated once per
    final model. ``num_classes`` may be None when unknown (callers then take the model's output width).
    ``input_shape`` is the shape of one input, ``(C, H, W)`` for images. ``task`` is what the data is for
    (one of :data:`TASKS`; None: classification or unknown): it decides what ``y`` of a batch is.
    """

    train: Any
    val: Any
    test: Any = None
    _: KW_ONLY
    input_shape: tuple[int, ...]
    name: str = "data"
    num_classes: int | None = None
    task: str | None = None
    labelled: bool = True  # False: the targets are the input model's own predictions (edgeprune.runs.unlabelled)

    def __post_init__(self):
        _check_task(self.task)

    @property
    def in_channels(self) -> int:
        return int(self.input_shape[0])

    @property
    def image_size(self) -> int | None:
        """Height of the images (their side when square); None for flat ``[B, F]`` inputs."""
        return int(self.input_shape[1]) if len(self.input_shape) > 1 else None

    @classmethod
    def from_loaders(cls, train, val, test=None, *, num_classes: int | None = None, name: str = "loaders",
                     task: str | None = None) -> "Data":
        """Wrap a user's loaders; ``input_shape`` comes from the first batch of ``train`` (checked, one
        extra pass started over it). ConfigError for a split that is not a DataLoader/Dataset."""
        _check_task(task)
        for value, split in zip((train, val, test), SPLIT_NAMES):
            _check_source(value, split)
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
            raise ConfigError(f"num_classes must be a positive integer or None (unknown), got {num_classes!r}")
        x, _ = first_batch(train, "training data")
        return cls(train, val, test, input_shape=tuple(int(d) for d in x.shape[1:]), name=str(name), num_classes=num_classes,
                   task=task)

    def split(self, split: str):
        """The data called ``split`` ('train', 'val' or 'test')."""
        if split not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, split)

    def loader(self, split: str, batch_size: int, shuffle: bool | None = None, seed: int = 0,
               *, drop_last: bool = False) -> DataLoader:
        """A DataLoader over ``split``; ``shuffle`` defaults to True for 'train' and False otherwise.

        A split that is already a DataLoader is returned as it is (see :func:`make_loader`)."""
        data = self.split(split)
        if data is None:
            raise ConfigError(f"{self.name} has no {split} split")
        if shuffle is None:
            shuffle = split == "train"
        return make_loader(data, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
