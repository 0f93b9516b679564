"""What the ``masks:`` and ``coco:`` folder readers share: the ``<path>[,size=S]`` argument, the image size
they resize to, image headers and decoding with PIL, and the fixed test split of a folder without one."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from edgeprune.data.imagefolder import GRAY_MODES, IMAGE_EXTENSIONS
from edgeprune.data.splits import SALT_TEST, stratified_split
from edgeprune.errors import ConfigError, DataError

TEST_FRACTION, TEST_SEED = 0.2, 0  # the fixed test split of a folder without one (as imagefolder's)
_SIZE_SUFFIX = re.compile(r"^(?P<path>.+),size=(?P<size>\d+)$")
_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def parse_path_size(arg: str | None, kind: str) -> tuple[str, int | None]:
    """``'<path>'`` or ``'<path>,size=S'`` -> (path, S or None); ConfigError naming ``kind`` otherwise."""
    match = _SIZE_SUFFIX.match(arg or "")
    if match is None:
        if not arg:
            raise ConfigError(f"{kind} needs a path: '{kind}:<path>' or '{kind}:<path>,size=S'")
        return arg, None
    size = int(match["size"])
    if not 1 <= size <= 4096:
        raise ConfigError(f"{kind} size={size} is out of range; allowed 1..4096")
    return match["path"], size


def find_folder(path_text: str, root: Path | None, kind: str) -> Path:
    """The folder ``path_text`` names (a relative path is tried against the cwd, then ``root``)."""
    path = Path(path_text).expanduser()
    if not path.is_absolute() and not path.exists() and root is not None:
        path = Path(root) / path
    if not path.is_dir():
        raise DataError(f"{kind} folder {path} does not exist or is not a folder")
    return path


def image_files(folder: Path) -> list[Path]:
    """The visible image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(IMAGE_EXTENSIONS))


def header(path: Path) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (width, height)) of an image without decoding its pixels."""
    try:
        with Image.open(path) as img:
            return img.mode, img.size
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def common_mode(modes) -> str:
    """'L' if every image is grayscale, else 'RGB'."""
    return "L" if all(m in GRAY_MODES for m in modes) else "RGB"


def target_size(sizes: list[tuple[int, int]], size: int | None) -> tuple[int, int]:
    """(height, width) every image is resized to: S×S for ``size=S``; else the images' own size when they all
    share one; else a square of the median shorter side."""
    if size is not None:
        return size, size
    if len(set(sizes)) == 1:
        return sizes[0][1], sizes[0][0]
    side = int(statistics.median(min(s) for s in sizes))
    return side, side


def decode(path: Path, mode: str, hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """The image at ``path`` in ``mode`` resized (stretched) to ``hw`` (bilinear, or nearest for class maps)."""
    try:
        with Image.open(path) as img:
            img = img if mode is None else img.convert(mode)
            if img.size != (hw[1], hw[0]):
                img = img.resize((hw[1], hw[0]), Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR)
            return np.asarray(img)
    except _READ_ERRORS as exc:
        raise DataError(f"cannot decode image {path}: {exc}") from None


def to_chw(arrays: list[np.ndarray]) -> np.ndarray:
    """Decoded uint8 images ([H, W] or [H, W, C]) as one [N, C, H, W] array."""
    stacked = np.stack(arrays)
    return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)


def fixed_test_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) indices of a folder without a test split: a fixed 20% at random, seed 0 (never the run's)."""
    return stratified_split(np.zeros(n), TEST_FRACTION, TEST_SEED, salt=SALT_TEST)
