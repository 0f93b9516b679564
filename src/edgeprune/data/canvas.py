"""MNIST digits pasted on blank canvases: ``mnist-seg`` (segmentation) and ``mnist-det`` (detection).

Specs: ``mnist-seg[:size=64,digits=3,n=10000,test=2000]`` and ``mnist-det[:size=128,digits=4,n=10000,test=2000]``.
Each canvas (1×size×size, black) gets 1..``digits`` MNIST digits (uniform count), each resized with
``torch.nn.functional.interpolate`` (antialiased bilinear) to a random square side (mnist-seg 20..32 px,
mnist-det 14..48 px, capped at ``size``) and pasted fully inside the canvas at a uniform random position; where
digits overlap the image keeps the brighter pixel. A resized digit's *ink* is where its pixel is > 0.5 (uint8
> 127, after rounding to uint8, the values the image holds):

* mnist-seg masks hold class d+1 on the ink of digit d, 0 elsewhere; a later digit's ink overwrites an
  earlier one's class (11 classes: background, "0".."9"; nothing is marked 255 = ignore);
* mnist-det boxes are the tight (x1, y1, x2, y2) box of each digit's ink (x2, y2 exclusive: one past the last
  ink pixel), label d+1; overlapped digits keep their full box.

The canvases are fixed: ``n`` train+val canvases built only from MNIST's training images and ``test``
(default n // 5) test canvases only from MNIST's test images, from fixed seeds. Canvas i depends only on
(spec kind, digits, size, split, i), so a smaller ``n`` or ``test`` gives a prefix of a larger one. val, ``limit``
and ``test_limit`` are taken as :func:`~edgeprune.data.dense.task_splits` does; mean/std are computed on the train
part (MNIST's constants would be wrong: a canvas is mostly black).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from edgeprune.data.base import Splits
from edgeprune.data.dense import DetectionDataset, SegmentationDataset, task_splits
from edgeprune.data.mnist import load_mnist
from edgeprune.errors import ConfigError

INK = 127  # a uint8 pixel > 127 (intensity > 0.5) is ink
SCALES = {"mnist-seg": (20, 32), "mnist-det": (14, 48)}
DEFAULTS = {"mnist-seg": {"size": 64, "digits": 3, "n": 10_000, "test": None},
            "mnist-det": {"size": 128, "digits": 4, "n": 10_000, "test": None}}
_LIMITS = {"size": (16, 1024), "digits": (1, 32), "n": (2, 1_000_000), "test": (1, 1_000_000)}
CLASSES = ["background"] + [str(d) for d in range(10)]
_SEED = 20240526
_KIND_SALT = {"mnist-seg": 1, "mnist-det": 2}
_SPLIT_SALT = {"train": 1, "test": 2}
CHUNK = 512  # canvases drawn from one random stream (keeps canvas i independent of n)


def parse_options(kind: str, text: str | None) -> dict:
    """``'size=96,digits=2'`` -> the full option dict of ``kind``; ConfigError on unknown keys or bad values."""
    opts = dict(DEFAULTS[kind])
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = (p.strip() for p in item.partition("="))
        if not sep or key not in _LIMITS:
            raise ConfigError(f"{kind} option {item!r} is not key=value with a known key; allowed: {', '.join(opts)}")
        try:
            parsed = int(value)
        except ValueError:
            raise ConfigError(f"{kind} option {key}={value!r} is not an integer") from None
        lo, hi = _LIMITS[key]
        if not lo <= parsed <= hi:
            raise ConfigError(f"{kind} option {key}={parsed} is out of range; allowed {lo}..{hi}")
        opts[key] = parsed
    if opts["test"] is None:
        opts["test"] = max(opts["n"] // 5, 1)
    return opts


@contextmanager
def one_thread():
    """torch on one thread while rendering: its calls are many and small, and idle worker threads spin between
    them, slowing the pasting that follows (on a busy 2-core machine mnist-det took 3x longer with 2 threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _resized(digits: torch.Tensor, side: int) -> np.ndarray:
    """uint8 28×28 digits [n, 28, 28] resized to side×side, rounded back to uint8."""
    y = torch.nn.functional.interpolate(digits.unsqueeze(1).float(), size=(side, side), mode="bilinear", antialias=True,
                                        align_corners=False)
    return y.add_(0.5).to(torch.uint8).squeeze(1).numpy()  # rounds: the antialiased values stay within [0, 255]


def _draws(kind: str, count: int, opts: dict, split: str, pool: int) -> tuple[np.ndarray, ...]:
    """Per canvas: digit count [count] and per slot: MNIST index, side, top, left [count, most]."""
    size, most = opts["size"], opts["digits"]
    hi = min(SCALES[kind][1], size)
    lo = min(SCALES[kind][0], hi)
    parts = []
    for chunk in range((count + CHUNK - 1) // CHUNK):  # whole chunks are drawn, so canvas i does not depend on count
        rng = np.random.default_rng([_SEED, _KIND_SALT[kind], most, size, _SPLIT_SALT[split], chunk])
        n_digits = rng.integers(1, most + 1, CHUNK)
        picks = rng.integers(0, pool, (CHUNK, most))
        sides = rng.integers(lo, hi + 1, (CHUNK, most))
        where = rng.random((CHUNK, most, 2))
        top, left = (where * (size - sides + 1)[..., None]).astype(np.int64).transpose(2, 0, 1)
        parts.append((n_digits, picks, sides, top, left))
    return tuple(np.concatenate(arrays)[:count] for arrays in zip(*parts))


def render(kind: str, images: torch.Tensor, labels: torch.Tensor, count: int, opts: dict, split: str):
    """``count`` canvases of ``kind`` from the MNIST ``images`` [M, 1, 28, 28] / ``labels`` of one split.

    Returns (uint8 images [count, 1, S, S], uint8 masks [count, S, S] or None, boxes, labels lists or None)."""
    size, most = opts["size"], opts["digits"]
    n_digits, picks, sides, tops, lefts = _draws(kind, count, opts, split, len(images))
    # torch fills its zeros at once; numpy's lazily zeroed (huge) pages cost ~1 s of page faults while pasting
    canvas = torch.zeros((count, size, size), dtype=torch.uint8).numpy()
    masks = torch.zeros((count, size, size), dtype=torch.uint8).numpy() if kind == "mnist-seg" else None
    found = []  # (canvas, slot, x1, y1, x2, y2, label) of every digit with ink
    source, digit_of = images[:, 0], labels.numpy()
    for slot in range(most):  # later slots are drawn on top; within a slot each canvas has one digit at most
        for side in np.unique(sides[n_digits > slot, slot]):
            which = np.flatnonzero((n_digits > slot) & (sides[:, slot] == side))
            patch = _resized(source[torch.from_numpy(picks[which, slot])], int(side))
            ink = patch > INK
            label = digit_of[picks[which, slot]] + 1
            for c, top, left, pixels, on, digit in zip(which, tops[which, slot], lefts[which, slot], patch, ink, label):
                region = canvas[c, top:top + side, left:left + side]
                np.maximum(region, pixels, out=region)
                if masks is not None:
                    masks[c, top:top + side, left:left + side][on] = digit
            if masks is not None:
                continue
            rows, cols, has = ink.any(2), ink.any(1), ink.any((1, 2))
            y1, x1 = rows.argmax(1), cols.argmax(1)
            y2, x2 = side - rows[:, ::-1].argmax(1), side - cols[:, ::-1].argmax(1)
            found.append(np.stack([which, np.full_like(which, slot), lefts[which, slot] + x1, tops[which, slot] + y1,
                                   lefts[which, slot] + x2, tops[which, slot] + y2, label], 1)[has])
    x = torch.from_numpy(canvas).unsqueeze(1)
    if masks is not None:
        return x, torch.from_numpy(masks), None, None
    table = np.concatenate(found) if found else np.zeros((0, 7), dtype=np.int64)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    split_at = np.searchsorted(table[:, 0], np.arange(1, count))
    per_box = np.split(table[:, 2:6].astype(np.float32), split_at)
    per_label = np.split(table[:, 6].astype(np.int64), split_at)
    return x, None, [torch.from_numpy(b) for b in per_box], [torch.from_numpy(t) for t in per_label]


def build(kind: str, arg: str | None, root: Path, download: bool, *, limit: int | None, test_limit: int | None,
          seed: int, val_fraction: float) -> Splits:
    """The :class:`Splits` of ``mnist-seg`` / ``mnist-det`` (MNIST read from ``root/mnist``, md5-checked)."""
    opts = parse_options(kind, arg)
    mnist = load_mnist(root, download=download)
    parts = {}
    for split, count in (("train", opts["n"]), ("test", opts["test"])):
        images, labels = (mnist.train_images, mnist.train_labels) if split == "train" else (mnist.test_images, mnist.test_labels)
        with one_thread():
            x, masks, boxes, box_labels = render(kind, images, labels, count, opts, split)
        stats = ((0.0,), (1.0,))  # placeholders: task_splits normalises with the train part's statistics
        if kind == "mnist-seg":
            parts[split] = SegmentationDataset(x, masks, *stats, num_classes=len(CLASSES), classes=CLASSES)
        else:
            parts[split] = DetectionDataset(x, boxes, box_labels, *stats, num_classes=len(CLASSES), classes=CLASSES)
    return task_splits(kind, parts["train"], parts["test"], seed=seed, val_fraction=val_fraction, limit=limit,
                       test_limit=test_limit)
