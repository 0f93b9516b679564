"""Datasets as in-memory tensors: ``load(spec) -> Splits`` (train / val / test) and a fast DataLoader.

Specs: ``digits`` (bundled, default), ``mnist``, ``cifar10``, ``cifar100``, ``imagefolder:<path>``,
``synthetic[:k=v,...]``; see :func:`list_datasets`. Files are looked up under :func:`resolve_root`.
"""

from edgeprune.data.base import ImageDataset, Splits, make_loader
from edgeprune.data.registry import list_datasets, load, resolve_root

__all__ = ["ImageDataset", "Splits", "load", "list_datasets", "make_loader", "resolve_root"]
