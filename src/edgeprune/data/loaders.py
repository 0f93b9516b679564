"""User DataLoaders next to edgeprune's datasets: the loader factory, the one batch check, checked iteration.

Every function of edgeprune that takes data goes through :func:`make_loader`, which builds a loader over a
dataset and returns a user's ``torch.utils.data.DataLoader`` unchanged (its batch size, order, sampler and
workers are the user's), and iterates it with :func:`checked`, which validates every batch with
:func:`check_batch` and turns a loader that yields nothing into a :class:`~edgeprune.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from edgeprune.errors import ConfigError, DataError, check_positive

EXPECTED = "(x, y) tensor pairs (x float [B, ...] with ndim >= 2, y integer [B])"
# a dict batch (Hugging Face datasets, torchvision v2 samples) is (x, y) under one of these keys each
INPUT_KEYS = ("pixel_values", "image", "images", "input", "inputs", "x")
TARGET_KEYS = ("labels", "label", "target", "targets", "mask", "masks", "y")


# How the y of a batch is checked: None is a classifier's labels; a task (edgeprune.tasks) sets its own check
# for the work done inside :func:`targets_checked_by`.
_TARGET_CHECK: ContextVar[Callable | None] = ContextVar("edgeprune_target_check", default=None)


@contextlib.contextmanager
def targets_checked_by(check: Callable | None):
    """Inside the block, :func:`check_batch` checks ``y`` with ``check(x, y, what) -> y`` (None: class labels)."""
    token = _TARGET_CHECK.set(check)
    try:
        yield
    finally:
        _TARGET_CHECK.reset(token)


def _pass_batch(batch):
    """collate_fn for datasets whose ``__getitems__`` already returns a stacked batch."""
    return batch


def _stacks_batches(dataset) -> bool:
    """Whether ``dataset`` is one of edgeprune's in-memory data sets, or a subset of one."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return getattr(dataset, "stacks_batches", False)


def make_loader(
    dataset: Dataset | DataLoader,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    sampler=None,
) -> DataLoader:
    """A single-process DataLoader over ``dataset``, one ``__getitems__`` call per batch when it has one.

    ``shuffle`` draws a new order every epoch from a generator seeded with ``seed``, so runs repeat.
    Pass ``sampler`` (e.g. a DistributedSampler) instead of ``shuffle`` to control the order yourself.

    A ``DataLoader`` is returned unchanged: the user's loader decides batch size, order, sampling and
    augmentation, so ``batch_size``, ``shuffle``, ``seed`` and ``drop_last`` are ignored for it (a
    ``sampler`` cannot be imposed on it: ConfigError).
    """
    if isinstance(dataset, DataLoader):
        if sampler is not None:
            raise ConfigError(f"cannot apply a {type(sampler).__name__} to a user DataLoader; "
                              "build the DataLoader with that sampler, or pass the dataset")
        if dataset.collate_fn is default_collate and _stacks_batches(dataset.dataset):
            dataset.collate_fn = _pass_batch  # a plain DataLoader over edgeprune's data: its batches come stacked
        return dataset
    check_positive("batch_size", batch_size)
    if sampler is not None and shuffle:
        raise ConfigError("shuffle=True cannot be combined with a sampler; let the sampler shuffle")
    collate = _pass_batch if hasattr(dataset, "__getitems__") else None
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=bool(shuffle),
        sampler=sampler,
        drop_last=drop_last,
        num_workers=0,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(int(seed)),
    )


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def check_batch(batch, what: str, *, labels: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``batch`` as ``(x, y int64)``, or DataError naming what ``what`` (e.g. 'training data') yielded.

    Allowed: a 2-tuple/list ``(x, y)`` (or a dict holding them under one of :data:`INPUT_KEYS` and one of
    :data:`TARGET_KEYS`) with ``x`` a floating-point tensor of ndim >= 2 and ``y`` an
    integer tensor ``[B]`` with the batch length of ``x``. With ``labels=False`` (for users that only read
    ``x``) a bare tensor ``x`` is allowed too, ``y`` is not checked and ``(x, None)`` is returned.
    """
    if isinstance(batch, dict):
        batch = _pair_of(batch, what, labels)
    if not labels and isinstance(batch, torch.Tensor):
        x, y = batch, None
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        x, y = batch
    else:
        raise DataError(f"{what} yields batches that are {_describe(batch)}; expected {EXPECTED}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        hint = ("; scale integer images to floats first (x.float() / 255, or torchvision's v2.ToDtype(torch.float32, "
                "scale=True))" if isinstance(x, torch.Tensor) and x.dtype == torch.uint8 else "")
        raise DataError(f"{what} yields x as {_describe(x)}; expected a floating-point tensor [B, ...] with ndim >= 2{hint}")
    if not labels:
        return x, None
    check = _TARGET_CHECK.get()
    if check is not None:
        return x, check(x, y, what)
    integer = isinstance(y, torch.Tensor) and not (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool)
    if not integer or y.ndim != 1 or y.shape[0] != x.shape[0]:
        if not isinstance(y, torch.Tensor) or y.ndim != 1:
            hint = "; not class labels? pass task= (segmentation, detection, regression or your own)"
        elif y.is_floating_point():
            hint = ("; a single sigmoid logit (BCE) or a regression target? pass task='regression' or your own loss and "
                    "metric as task=edgeprune.tasks.Custom(loss_fn, metric_fn), or a head of one logit per class")
        else:
            hint = ""
        raise DataError(f"{what} yields labels y as {_describe(y)}; expected an integer class tensor "
                        f"of shape ({x.shape[0]},), one label per image of x{hint}")
    return x, y.long()


def _pair_of(batch: dict, what: str, labels: bool):
    """A dict batch as ``(x, y)`` (``x`` alone when labels are not read and it has none)."""
    x = next((batch[k] for k in INPUT_KEYS if k in batch), None)
    y = next((batch[k] for k in TARGET_KEYS if k in batch), None)
    if x is not None and y is None and not labels:
        return x
    if x is None or y is None:
        raise DataError(f"{what} yields dict batches with keys {sorted(map(str, batch))}; expected its input under one of "
                        f"{', '.join(INPUT_KEYS)} and its target under one of {', '.join(TARGET_KEYS)}, or {EXPECTED}")
    return x, y


def collated(loader: Iterable, what: str) -> Iterator:
    """``loader``'s batches; items its collate cannot stack (PIL images: a transform to tensors forgotten) are one line."""
    batches = iter(loader)
    while True:
        try:
            yield next(batches)
        except StopIteration:
            return
        except TypeError as exc:
            found = re.search(r"found <class '([\w.]+)'>", str(exc))
            if "collate" not in str(exc) or found is None:
                raise
            raise DataError(f"{what} holds items its DataLoader cannot stack into a batch: {found.group(1)}; give the "
                            "dataset a transform to tensors (torchvision's transforms.ToTensor(), or v2.ToImage() then "
                            "v2.ToDtype(torch.float32, scale=True))") from None


def checked(loader: Iterable, what: str, *, labels: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Iterate ``loader``, passing every batch through :func:`check_batch`; DataError if it yields none."""
    empty = True
    for batch in collated(loader, what):
        empty = False
        yield check_batch(batch, what, labels=labels)
    if empty:
        dropped = (isinstance(loader, DataLoader) and loader.drop_last and loader.batch_size
                   and hasattr(loader.dataset, "__len__") and len(loader.dataset) < loader.batch_size)
        hint = (f" (its DataLoader drops the last batch, and its {len(loader.dataset)} items are fewer than its batch "
                f"size {loader.batch_size})" if dropped else "")
        raise DataError(f"{what} is empty: it yielded no batch{hint}; expected at least one {EXPECTED.split(' (')[0]} "
                        "batch")


def batches(data: Dataset | DataLoader, batch_size: int, what: str, **options) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Checked ``(x, y)`` batches of a dataset or DataLoader: :func:`checked` over :func:`make_loader`."""
    return checked(make_loader(data, batch_size, **options), what)


def first_batch(data: Dataset | DataLoader, what: str, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The first checked ``(x, y)`` batch (for a DataLoader this starts one extra pass over it)."""
    return next(batches(data, batch_size, what))


def take(loader: Iterable, n: int, what: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``n`` checked batches of ``loader``; a new pass starts when one pass yields fewer."""
    check_positive("number of batches", n)
    out: list = []
    while len(out) < n:
        for batch in checked(loader, what):
            out.append(batch)
            if len(out) == n:
                break
    return out
