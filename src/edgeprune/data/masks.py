"""Segmentation data from a folder of images and masks: ``masks:<path>[,size=S]``.

Layouts: ``<path>/images/`` + ``<path>/masks/``, or split trees ``<path>/train/{images,masks}`` with optional
``<path>/val/...`` and ``<path>/test/...``. Every image (any imagefolder extension, directly in ``images/``)
needs a mask ``masks/<same stem>.png`` of the same size: a single-channel PNG (PIL modes 1, L, P, I, I;16) whose
values are class indices, 255 = ignore (not scored); masks holding only 0 and 255 (black and white) read 255 as
class 1, the foreground, unless ``classes.txt`` names the classes. Without a test tree a fixed 20% of the images (seed 0)
is the test split; without a val tree val is carved from train with the run's seed.

Classes: the lines of ``<path>/classes.txt`` (one name per line, index = class), else ``max mask value + 1``
(255 excluded) classes named ``background, 1, 2, ...``. Images are read with PIL as grayscale if all of
them are, else RGB, and resized (stretched) to the size :func:`~edgeprune.data.folders.target_size` picks
(``size=S``: S×S) with bilinear interpolation, masks with nearest neighbour.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from edgeprune.data import folders
from edgeprune.data.base import Splits
from edgeprune.data.bundle import SPLIT_NAMES
from edgeprune.data.dense import IGNORE, SegmentationDataset, limit_pools, task_splits
from edgeprune.data.imagefolder import IMAGE_EXTENSIONS
from edgeprune.errors import DataError

MASK_MODES = frozenset({"1", "L", "P", "I", "I;16"})
CLASSES_FILE = "classes.txt"


def pairs_of(tree: Path) -> list[tuple[Path, Path]]:
    """(image, mask) files of ``tree/images`` and ``tree/masks``; DataError for no images or a missing mask."""
    images, masks = tree / "images", tree / "masks"
    found = folders.image_files(images)
    if not found:
        raise DataError(f"masks folder {images} holds no images (extensions: {' '.join(IMAGE_EXTENSIONS)})")
    pairs = [(image, masks / f"{image.stem}.png") for image in found]
    missing = next((pair for pair in pairs if not pair[1].is_file()), None)
    if missing is not None:
        raise DataError(f"image {missing[0]} has no mask {missing[1]}; every image needs masks/<same stem>.png")
    return pairs


def split_trees(folder: Path) -> dict[str, Path]:
    """Split name -> tree holding images/ and masks/."""
    if (folder / "train" / "images").is_dir():
        return {split: folder / split for split in SPLIT_NAMES if (folder / split / "images").is_dir()}
    if (folder / "images").is_dir():
        return {"train": folder}
    raise DataError(f"masks folder {folder} has no images/ folder; expected {folder}/images + {folder}/masks, "
                    f"or {folder}/train/images + {folder}/train/masks (val/ and test/ optional)")


def check_mask(image: Path, mask: Path, image_size: tuple[int, int]) -> None:
    mode, size = folders.header(mask)
    if mode not in MASK_MODES:
        raise DataError(f"mask {mask} has PIL mode {mode}; masks are single-channel PNGs of class indices "
                        f"(modes {', '.join(sorted(MASK_MODES))})")
    if size != image_size:
        raise DataError(f"mask {mask} is {size[0]}x{size[1]} but its image {image} is {image_size[0]}x{image_size[1]}; "
                        "they must be the same size")


def read_classes(folder: Path, masks: dict[str, torch.Tensor], files: dict[str, list]) -> list[str]:
    """Class names from classes.txt (mask values checked against it), else from the largest mask value."""
    named = folder / CLASSES_FILE
    if named.is_file():
        classes = [line.strip() for line in named.read_text().splitlines() if line.strip()]
        if not classes:
            raise DataError(f"{named} names no classes; expected one class name per line (index = class)")
    else:
        values = [m[m != IGNORE] for m in masks.values()]
        top = max((int(v.max()) for v in values if v.numel()), default=0)
        classes = ["background"] + [str(k) for k in range(1, top + 1)]
    for split, stack in masks.items():
        bad = ((stack >= len(classes)) & (stack != IGNORE)).flatten(1).any(1)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            value = int(stack[i][(stack[i] >= len(classes)) & (stack[i] != IGNORE)][0])
            raise DataError(f"mask {files[split][i][1]} holds class {value}; {named} names {len(classes)} classes "
                            f"(0..{len(classes) - 1}) and {IGNORE} is ignore")
    return classes


def binary_foreground(masks: dict[str, torch.Tensor], folder: Path) -> dict[str, torch.Tensor]:
    """Masks holding only 0 and 255 are binary masks saved as black and white (255 the foreground), not a background
    whose every other pixel is ignored: 255 becomes class 1, with a warning saying so."""
    values = torch.cat([m.unique() for m in masks.values()]).unique().tolist()
    if set(values) != {0, IGNORE}:
        return masks
    warnings.warn(f"the masks of {folder} hold only 0 and {IGNORE}: {IGNORE} is read as class 1 (the foreground), not as "
                  f"'ignore'; add {CLASSES_FILE} (background, then your classes) to read it as ignore", stacklevel=3)
    return {split: torch.where(m == IGNORE, torch.ones_like(m), m) for split, m in masks.items()}


def read_masks(path: Path, hw: tuple[int, int]) -> np.ndarray:
    mask = folders.decode(path, None, hw, nearest=True)
    if mask.size and int(mask.max()) > 255:
        raise DataError(f"mask {path} holds values above 255; class indices are 0..254 and 255 = ignore")
    return mask.astype(np.uint8)


def build(arg: str | None, root: Path, download: bool, *, limit: int | None, test_limit: int | None, seed: int,
          val_fraction: float) -> Splits:
    """The :class:`Splits` of ``masks:<path>[,size=S]`` (see the module docstring)."""
    path_text, size = folders.parse_path_size(arg, "masks")
    folder = folders.find_folder(path_text, root, "masks")
    files = {split: pairs_of(tree) for split, tree in split_trees(folder).items()}
    if "test" not in files:
        rest, held = folders.fixed_test_split(len(files["train"]))
        files["test"] = [files["train"][i] for i in held]
        files["train"] = [files["train"][i] for i in rest]
    keep = dict(zip(("train", "val", "test"), limit_pools(len(files["train"]), len(files["test"]), limit, test_limit,
                                                        len(files.get("val", [])))))
    files = {split: [pairs[i] for i in keep[split]] for split, pairs in files.items()}
    headers = {image: folders.header(image) for pairs in files.values() for image, _ in pairs}
    for pairs in files.values():
        for image, mask in pairs:
            check_mask(image, mask, headers[image][1])
    mode = folders.common_mode(m for m, _ in headers.values())
    hw = folders.target_size([s for _, s in headers.values()], size)
    images = {split: torch.from_numpy(folders.to_chw([folders.decode(image, mode, hw) for image, _ in pairs]))
              for split, pairs in files.items()}
    masks = {split: torch.from_numpy(np.stack([read_masks(mask, hw) for _, mask in pairs])) for split, pairs in files.items()}
    if not (folder / CLASSES_FILE).is_file():
        masks = binary_foreground(masks, folder)
    classes = read_classes(folder, masks, files)
    parts = {split: SegmentationDataset(images[split], masks[split], (0.0,) * images[split].shape[1],
                                        (1.0,) * images[split].shape[1], num_classes=len(classes), classes=classes)
             for split in files}
    return task_splits("masks", parts["train"], parts["test"], seed=seed, val_fraction=val_fraction, limit=limit,
                       test_limit=test_limit, val=parts.get("val"))
