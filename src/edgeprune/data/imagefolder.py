"""A class-per-folder image tree read with PIL into memory.

Layouts: ``<path>/train/<class>/*.png`` + ``<path>/test/<class>/*.png``, or a single
``<path>/<class>/*.png`` tree from which a fixed stratified 20% test split (seed 0, independent of the
run's seed) is carved. Class names are the sorted folder names of the training tree; nested folders
inside a class folder are searched too; hidden files and non-image files are ignored.

Channels: 1 if every image is stored as grayscale (PIL modes 1, L, LA, I, I;16, F), else 3 (RGB).
Size: images are made square and equal. With ``imagefolder:<path>,size=S`` every image becomes S×S;
otherwise, if all images already share one square size, it is kept, else S is the median shorter side.
Resizing scales the shorter side to S (antialiased bilinear) and centre-crops S×S, keeping aspect.
All images are decoded into one uint8 tensor, so the tree must fit in memory (see ``limit``).
"""

from __future__ import annotations

import os
import re
import statistics
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edgeprune.data.base import RawData
from edgeprune.data.splits import SALT_TEST, limit_indices, stratified_split
from edgeprune.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
TEST_FRACTION = 0.2
TEST_SEED = 0
_SIZE_SUFFIX = re.compile(r"^(?P<path>.+),size=(?P<size>\d+)$")


def parse_arg(arg: str) -> tuple[str, int | None]:
    """``'<path>'`` or ``'<path>,size=S'`` -> (path, S or None)."""
    match = _SIZE_SUFFIX.match(arg or "")
    if match is None:
        if not arg:
            raise ConfigError("imagefolder needs a path: 'imagefolder:<path>' or 'imagefolder:<path>,size=S'")
        return arg, None
    size = int(match["size"])
    if not 1 <= size <= 4096:
        raise ConfigError(f"imagefolder size={size} is out of range; allowed 1..4096")
    return match["path"], size


def load_imagefolder(arg: str, root: Path | None = None, *, limit: int | None = None) -> RawData:
    """Read the tree named by ``arg`` (a relative path is tried against the cwd, then ``root``).

    ``limit`` is applied to the file lists before decoding, so a quick run reads only what it uses.
    """
    path_text, size = parse_arg(arg)
    path = Path(path_text).expanduser()
    if not path.is_absolute() and not path.exists() and root is not None:
        path = Path(root) / path
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist or is not a folder")
    if (path / "train").is_dir() and (path / "test").is_dir():
        classes = class_folders(path / "train")
        train_files, train_labels = list_images(path / "train", classes)
        test_files, test_labels = list_images(path / "test", classes, allow_missing_classes=True)
    else:
        classes = class_folders(path)
        files, labels = list_images(path, classes)
        rest, held = stratified_split(labels, TEST_FRACTION, TEST_SEED, salt=SALT_TEST)
        train_files, train_labels = [files[i] for i in rest], labels[rest]
        test_files, test_labels = [files[i] for i in held], labels[held]
    keep_train, keep_test = limit_indices(train_labels, test_labels, limit)
    train_files, train_labels = [train_files[i] for i in keep_train], train_labels[keep_train]
    test_files, test_labels = [test_files[i] for i in keep_test], test_labels[keep_test]

    modes, sizes = zip(*(_header(f) for f in train_files + test_files))
    mode = "L" if all(m in GRAY_MODES for m in modes) else "RGB"
    if size is None:
        size = sizes[0][0] if len(set(sizes)) == 1 and sizes[0][0] == sizes[0][1] else int(
            statistics.median(min(s) for s in sizes))
    return RawData(
        name="imagefolder",
        train_images=decode_all(train_files, mode, size), train_labels=torch.from_numpy(train_labels),
        test_images=decode_all(test_files, mode, size), test_labels=torch.from_numpy(test_labels),
        classes=classes, mean=None, std=None,
        augment=False, crop_padding=max(1, size // 8), hflip=True, notes={"path": str(path)},
    )


def class_folders(tree: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``tree``; DataError if there are none."""
    if not any(tree.iterdir()):
        raise DataError(f"image folder {tree} is empty; expected one sub-folder of images per class")
    names = sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"image folder {tree} has no class folders; expected {tree}/<class>/<image>.png")
    return names


def list_images(tree: Path, classes: list[str], *, allow_missing_classes: bool = False) -> tuple[list[Path], np.ndarray]:
    """Image files under ``tree/<class>/`` (sorted) and their int64 labels."""
    present = class_folders(tree)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise DataError(f"{tree} has class folders {unknown} that the training tree lacks; allowed: {classes}")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = tree / name
        found = sorted(_walk_images(folder)) if folder.is_dir() else []
        if not found and not allow_missing_classes:
            raise DataError(f"class folder {folder} holds no images (extensions: {' '.join(IMAGE_EXTENSIONS)})")
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(f"image folder {tree} holds no images (extensions: {' '.join(IMAGE_EXTENSIONS)})")
    return files, np.asarray(labels, dtype=np.int64)


def _walk_images(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                yield Path(dirpath) / name


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.mode, img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def decode_all(files: list[Path], mode: str, size: int) -> torch.Tensor:
    """Decode ``files`` into one uint8 [N, C, size, size] tensor."""
    channels = 1 if mode == "L" else 3
    out = torch.empty((len(files), channels, size, size), dtype=torch.uint8)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as img:
                arr = np.asarray(_square(img.convert(mode), size))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot decode image {path}: {exc}") from None
        out[i] = torch.from_numpy(arr.reshape(size, size, channels).copy()).permute(2, 0, 1)
    return out


def _square(img: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to ``size`` and centre-crop to size×size (a no-op if already there)."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))
