"""Datasets as in-memory tensors: ``load(spec) -> Splits`` (train / val / test) and a fast DataLoader.

User data: :class:`Data` is the bundle every API takes (``Splits`` is one); :func:`resolve` turns a spec,
a ``(train_loader, val_loader[, test_loader])`` tuple or a bundle into one. Wherever edgeprune takes data
it takes a ``torch.utils.data.DataLoader`` yielding ``(x, y)`` tensor batches, used as it is
(:func:`make_loader`); malformed batches raise DataError (:func:`check_batch`).

Specs: ``digits`` (bundled, default), ``mnist``, ``cifar10``, ``cifar100``, ``imagefolder:<path>``,
``synthetic[:k=v,...]``; for segmentation ``mnist-seg`` and ``masks:<path>``, for detection ``mnist-det`` and
``coco:<path>`` (:class:`SegmentationDataset` / :class:`DetectionDataset`, ``Splits.task`` set; COCO folders are
written by :func:`write_coco`); see :func:`list_datasets`. Files are looked up under :func:`resolve_root`.
"""

from edgeprune.data.base import ImageDataset, Splits
from edgeprune.data.bundle import Data
from edgeprune.data.coco import write_coco
from edgeprune.data.dense import DetectionDataset, SegmentationDataset
from edgeprune.data.loaders import check_batch, make_loader
from edgeprune.data.registry import list_datasets, load, resolve, resolve_root

__all__ = ["Data", "DetectionDataset", "ImageDataset", "SegmentationDataset", "Splits", "check_batch", "list_datasets",
           "load", "make_loader", "resolve", "resolve_root", "write_coco"]
