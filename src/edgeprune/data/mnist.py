"""MNIST from the four official gzip IDX files in ``<root>/mnist/``, md5-checked before parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from edgeprune.data.base import RawData
from edgeprune.data.checksum import verify_md5
from edgeprune.data.download import MNIST_MIRRORS
from edgeprune.data.download import download as fetch
from edgeprune.data.idx import MAGIC_IMAGES, MAGIC_LABELS, read_idx
from edgeprune.errors import DataError

FOLDER = "mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# The official checksums. Tests monkeypatch this table (or pass ``md5s``) to load fixture files.
MD5S = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MEAN, STD = (0.1307,), (0.3081,)
NUM_CLASSES = 10


def load_mnist(root: Path, *, download: bool = False, md5s: Mapping[str, str] | None = None) -> RawData:
    """Read MNIST from ``root/mnist``; with ``download`` missing files are fetched first."""
    md5s = MD5S if md5s is None else md5s
    folder = Path(root) / FOLDER
    pools = {}
    for split, (images_name, labels_name) in FILES.items():
        images = read_verified(folder / images_name, md5s[images_name], MAGIC_IMAGES, download)
        labels = read_verified(folder / labels_name, md5s[labels_name], MAGIC_LABELS, download)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"MNIST {split} split has {images.shape[0]} images in {images_name} "
                f"but {labels.shape[0]} labels in {labels_name}; they must match"
            )
        if labels.size and int(labels.max()) >= NUM_CLASSES:
            raise DataError(f"{folder / labels_name} holds label {int(labels.max())}; MNIST labels are 0..9")
        pools[split] = (torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).to(torch.int64))
    return RawData(
        name="mnist",
        train_images=pools["train"][0], train_labels=pools["train"][1],
        test_images=pools["test"][0], test_labels=pools["test"][1],
        classes=[str(d) for d in range(NUM_CLASSES)], mean=MEAN, std=STD,
        augment=False, crop_padding=2, hflip=False,  # digits are not mirror-symmetric
    )


def read_verified(path: Path, md5: str, magic: int, download: bool):
    """md5-check (downloading first if allowed and missing) and parse one IDX file."""
    if not path.is_file():
        if download:
            fetch([mirror + path.name for mirror in MNIST_MIRRORS], path, md5)
        else:
            raise DataError(
                f"MNIST file {path} not found; put the four official .gz files in {path.parent}, "
                f"pass --data-dir / set EDGEPRUNE_DATA to the folder that holds mnist/, or use download=True"
            )
    verify_md5(path, md5)
    return read_idx(path, expected_magic=magic)
