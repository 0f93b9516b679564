"""Data specs -> readers; :func:`load`, which turns a reader's pools into :class:`Splits`; :func:`resolve`.

A spec is ``name`` or ``name:argument`` (``synthetic:classes=4``, ``imagefolder:/data/pets``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from edgeprune.data import canvas, coco, masks
from edgeprune.data.base import ImageDataset, RawData, Splits
from edgeprune.data.bundle import Data
from edgeprune.data.cifar import load_cifar
from edgeprune.data.digits import load_digits
from edgeprune.data.imagefolder import load_imagefolder
from edgeprune.data.mnist import load_mnist
from edgeprune.data.splits import SALT_VAL, limit_indices, stratified_split
from edgeprune.data.synthetic import load_synthetic
from edgeprune.data.transforms import channel_stats
from edgeprune.errors import ConfigError

ENV_ROOT = "EDGEPRUNE_DATA"


@dataclass(frozen=True)
class Entry:
    """One dataset: its description, whether it takes ``:argument``, and its reader or builder.

    Classification: ``read(argument, root, download, limit) -> RawData``; readers may apply ``limit`` early
    (``load`` applies it again, which changes nothing). Other tasks: ``build(argument, root, download, *, limit,
    test_limit, seed, val_fraction) -> Splits`` makes the splits itself, with :func:`load`'s semantics.
    """

    description: str
    read: Callable[[str | None, Path, bool, int | None], RawData] | None
    argument: str | None = None  # None: takes no argument; else how the argument is described
    build: Callable[..., Splits] | None = None


def _digits(arg, root, download, limit):
    return load_digits()


def _mnist(arg, root, download, limit):
    return load_mnist(root, download=download)


def _cifar(variant):
    def read(arg, root, download, limit):
        return load_cifar(variant, root, download=download)
    return read


def _imagefolder(arg, root, download, limit):
    return load_imagefolder(arg, root, limit=limit)


def _synthetic(arg, root, download, limit):
    return load_synthetic(arg)


def _canvas(kind):
    return partial(canvas.build, kind)


DATASETS: dict[str, Entry] = {
    "digits": Entry("scikit-learn's bundled 8x8 digits, 1x8x8, 10 classes, fixed 20% test split (no download)", _digits),
    "mnist": Entry("MNIST handwritten digits, 1x28x28, 10 classes, from <data-dir>/mnist/*.gz (md5-checked)", _mnist),
    "cifar10": Entry("CIFAR-10, 3x32x32, 10 classes, from <data-dir>/cifar-10-python.tar.gz (md5-checked)", _cifar("cifar10")),
    "cifar100": Entry("CIFAR-100 (fine labels), 3x32x32, 100 classes, from <data-dir>/cifar-100-python.tar.gz", _cifar("cifar100")),
    "imagefolder": Entry("class-per-folder images read with PIL: imagefolder:<path>[,size=S]", _imagefolder, "<path>[,size=S]"),
    "synthetic": Entry("random images with a learnable class signal, for tests: synthetic[:classes=10,channels=3,size=32,n=512]",
                       _synthetic, "[key=value,...]"),
    "mnist-seg": Entry("segmentation: 1..3 MNIST digits on 1x64x64 canvases, 11 classes (background, 0..9): "
                       "mnist-seg[:size=64,digits=3,n=10000,test=2000]", None, "[key=value,...]", _canvas("mnist-seg")),
    "mnist-det": Entry("detection: 1..4 MNIST digits (14..48 px) on 1x128x128 canvases, boxes + labels 1..10: "
                       "mnist-det[:size=128,digits=4,n=10000,test=2000]", None, "[key=value,...]", _canvas("mnist-det")),
    "masks": Entry("segmentation: images/ + masks/ (PNG class indices, 255 ignore) read with PIL: masks:<path>[,size=S]",
                   None, "<path>[,size=S]", masks.build),
    "coco": Entry("detection: a COCO-format folder (annotations/instances_<split>*.json + images): coco:<path>[,size=S]",
                  None, "<path>[,size=S]", coco.build),
}
_NEEDS_ARGUMENT = {"imagefolder", "masks", "coco"}


def list_datasets() -> dict[str, str]:
    """Dataset name -> one-line description (for ``edgeprune datasets``)."""
    return {name: entry.description for name, entry in DATASETS.items()}


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$EDGEPRUNE_DATA``, else ``./data``."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser()
    return Path("data")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``'name[:argument]'`` -> (name, argument); ConfigError naming the spec if it is unknown."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"data spec must be a non-empty string, got {spec!r}; known: {', '.join(DATASETS)}")
    name, sep, arg = spec.strip().partition(":")
    name = name.lower()
    if name not in DATASETS:
        raise ConfigError(f"unknown data spec {spec!r}; known: {', '.join(DATASETS)} (e.g. imagefolder:<path>)")
    entry = DATASETS[name]
    if sep and entry.argument is None:
        raise ConfigError(f"data spec {spec!r}: {name} takes no ':argument'")
    if name in _NEEDS_ARGUMENT and not arg:
        raise ConfigError(f"data spec {spec!r} needs an argument: {name}:{entry.argument}")
    return name, (arg if sep else None)


def load(
    spec: str,
    root: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    augment: bool | None = None,
    download: bool = False,
    limit: int | None = None,
    test_limit: int | None = None,
) -> Splits:
    """Load the dataset named by ``spec`` as train / val / test datasets (:class:`ImageDataset` s for classifiers).

    * ``val`` is carved from the official training data, stratified per class, with ``seed``;
      ``test`` is only ever the official test split (digits and single-tree image folders, which have
      none, get a fixed seed-0 20% split that does not move with ``seed``).
    * ``limit`` caps the train+val pool at ``limit`` examples (stratified, fixed subset independent of
      ``seed``); the test split stays whole up to ``max(limit, 10000)`` examples, so only huge test
      sets are thinned; ``test_limit`` caps the test split instead (stratified, fixed; quick runs).
    * ``mean``/``std`` are the standard constants for MNIST and CIFAR, else computed on the train part
      (after removing val).
    * ``augment``: None uses the dataset's default (on for CIFAR), True/False forces it for train;
      val and test are never augmented.
    * ``root``: the data folder (see :func:`resolve_root`); ``download`` fetches missing MNIST/CIFAR
      files (md5-checked).
    * segmentation / detection specs (``mnist-seg``, ``mnist-det``, ``masks:``, ``coco:``) return
      :mod:`~edgeprune.data.dense` datasets (``Splits.task`` set); their val, ``limit`` and ``test_limit``
      subsets are random instead of stratified, mean/std come from the train part, and there is no augmentation.
    """
    name, arg = parse_spec(spec)
    _check_options(val_fraction, limit, test_limit, augment)
    entry = DATASETS[name]
    if entry.build is not None:
        if augment:
            raise ConfigError(f"data spec {spec!r} has no augmentation; pass augment=None or False")
        return entry.build(arg, resolve_root(root), bool(download), limit=limit, test_limit=test_limit, seed=int(seed),
                           val_fraction=float(val_fraction))
    raw = entry.read(arg, resolve_root(root), bool(download), limit)
    return _image_splits(name, raw, val_fraction, seed, augment, limit, test_limit)


def _check_options(val_fraction, limit, test_limit, augment) -> None:
    """One-line ConfigErrors for the options of :func:`load`."""
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 2):
        raise ConfigError(f"limit must be an integer >= 2 (train+val examples) or None, got {limit!r}")
    if test_limit is not None and (isinstance(test_limit, bool) or not isinstance(test_limit, (int, np.integer))
                                   or test_limit < 1):
        raise ConfigError(f"test_limit must be an integer >= 1 (test examples) or None, got {test_limit!r}")
    if augment is not None and not isinstance(augment, bool):
        raise ConfigError(f"augment must be True, False or None (dataset default), got {augment!r}")


def _image_splits(name: str, raw: RawData, val_fraction: float, seed: int, augment: bool | None, limit, test_limit) -> Splits:
    """A classifier's splits from its raw train and test images: limited, val carved stratified, normalised."""
    keep_train, keep_test = limit_indices(raw.train_labels.numpy(), raw.test_labels.numpy(), limit, test_limit)
    pool_x, pool_y = raw.train_images[keep_train], raw.train_labels[keep_train]
    test_x, test_y = raw.test_images[keep_test], raw.test_labels[keep_test]
    train_idx, val_idx = stratified_split(pool_y.numpy(), val_fraction, seed, salt=SALT_VAL)
    train_x, train_y = pool_x[train_idx], pool_y[train_idx]
    if raw.mean is not None and raw.std is not None:
        mean, std = tuple(raw.mean), tuple(raw.std)
    else:
        mean, std = channel_stats(train_x)

    def dataset(x, y, aug: bool) -> ImageDataset:
        return ImageDataset(x, y, mean, std, augment=aug, crop_padding=raw.crop_padding, hflip=raw.hflip,
                            seed=seed, num_classes=len(raw.classes), classes=raw.classes)

    train = dataset(train_x, train_y, raw.augment if augment is None else augment)
    return Splits(
        train=train, val=dataset(pool_x[val_idx], pool_y[val_idx], False), test=dataset(test_x, test_y, False),
        name=name, num_classes=len(raw.classes), input_shape=tuple(int(d) for d in train.images.shape[1:]),
        classes=list(raw.classes), mean=mean, std=std, seed=int(seed), val_fraction=float(val_fraction), limit=limit,
    )


def resolve(
    data,
    *,
    root: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    limit: int | None = None,
    seed: int = 0,
) -> Data:
    """Whatever a user hands over as data, as a :class:`Data` bundle.

    * a :class:`Data` (e.g. the :class:`Splits` of :func:`load`) is returned as it is;
    * a tuple/list ``(train, val)`` or ``(train, val, test)`` of DataLoaders (or datasets) goes through
      :meth:`Data.from_loaders` (``num_classes`` unknown: None);
    * a data spec string (``"digits"``, ``"mnist"``, ...) is loaded with :func:`load` and the options.

    Anything else, or a tuple of another length, is a ConfigError.
    """
    if isinstance(data, Data):
        return data
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise ConfigError(f"data as a {type(data).__name__} must be (train, val) or (train, val, test) "
                              f"DataLoaders, got {len(data)} items")
        return Data.from_loaders(*data)
    if isinstance(data, str):
        return load(data, root, val_fraction=val_fraction, seed=seed, limit=limit)
    raise ConfigError(f"data must be a Data bundle, a (train, val[, test]) tuple of DataLoaders or a data spec "
                      f"string (known: {', '.join(DATASETS)}), got {type(data).__name__}")
