"""CIFAR-10 / CIFAR-100 from the official python-pickle tarballs, read in place with ``tarfile``.

The tarball is md5-checked before anything in it is unpickled. An already-extracted folder
(``cifar-10-batches-py/`` or ``cifar-100-python/``) is accepted too; it is NOT md5-checked unless the
tarball sits next to it (then the tarball is used), only checked for the expected keys and shapes.
In both cases unpickling goes through an allow-list that admits plain containers and numpy arrays only.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from edgeprune.data.base import RawData
from edgeprune.data.checksum import verify_md5
from edgeprune.data.download import CIFAR_MIRRORS
from edgeprune.data.download import download as fetch
from edgeprune.errors import DataError


@dataclass(frozen=True)
class Layout:
    """Where one CIFAR variant keeps what inside its tarball."""

    name: str
    tarball: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels_key: bytes
    names_key: bytes
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


LAYOUTS = {
    "cifar10": Layout(
        "cifar10", "cifar-10-python.tar.gz", "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        b"labels", b"label_names", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": Layout(
        "cifar100", "cifar-100-python.tar.gz", "cifar-100-python", ("train",), ("test",), "meta",
        b"fine_labels", b"fine_label_names", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
}
# Official tarball checksums; tests monkeypatch this table to load fixture tarballs.
MD5S = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85",
}
_PIXELS = 3 * 32 * 32


def load_cifar(variant: str, root: Path, *, download: bool = False, md5s: Mapping[str, str] | None = None) -> RawData:
    """Read ``variant`` ('cifar10' or 'cifar100'; fine labels) from ``root``."""
    layout = LAYOUTS[variant]
    md5s = MD5S if md5s is None else md5s
    root = Path(root)
    tarball, folder = root / layout.tarball, root / layout.folder
    if not tarball.is_file() and not folder.is_dir():
        if not download:
            raise DataError(
                f"{variant} not found: neither {tarball} nor {folder}/ exists; put {layout.tarball} there, "
                f"pass --data-dir / set EDGEPRUNE_DATA to its folder, or use download=True"
            )
        fetch([m + layout.tarball for m in CIFAR_MIRRORS], tarball, md5s[layout.tarball])
    if tarball.is_file():
        verify_md5(tarball, md5s[layout.tarball])
        read = _TarReader(tarball, layout.folder)
    else:
        read = _folder_reader(folder)
    try:
        return _assemble(layout, read)
    finally:
        close = getattr(read, "close", None)
        if close:
            close()


def _assemble(layout: Layout, read: Callable[[str], object]) -> RawData:
    meta = read(layout.meta_file)
    classes = _class_names(meta, layout)
    pools = {}
    for split, files in (("train", layout.train_files), ("test", layout.test_files)):
        parts = [_batch(read(name), name, layout) for name in files]
        pools[split] = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    return RawData(
        name=layout.name,
        train_images=pools["train"][0], train_labels=pools["train"][1],
        test_images=pools["test"][0], test_labels=pools["test"][1],
        classes=classes, mean=layout.mean, std=layout.std,
        augment=True, crop_padding=4, hflip=True,
    )


def _get(d: dict, key: bytes):
    """Look a key up as bytes (the official files) or str (files re-pickled under Python 3)."""
    if key in d:
        return d[key]
    return d.get(key.decode())


def _batch(obj, name: str, layout: Layout) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(obj, dict):
        raise DataError(f"{layout.name} batch {name} holds a {type(obj).__name__}, expected a dict")
    data, labels = _get(obj, b"data"), _get(obj, layout.labels_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{layout.name} batch {name}: 'data' must be uint8 [N, {_PIXELS}], found {found}")
    if labels is None:
        raise DataError(f"{layout.name} batch {name} has no {layout.labels_key.decode()!r} entry")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{layout.name} batch {name}: labels are not a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{layout.name} batch {name}: {data.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise DataError(
            f"{layout.name} batch {name}: labels span [{labels.min()}, {labels.max()}], allowed 0..{layout.num_classes - 1}"
        )
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def _class_names(meta, layout: Layout) -> list[str]:
    names = _get(meta, layout.names_key) if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or len(names) != layout.num_classes:
        raise DataError(
            f"{layout.name} {layout.meta_file} must list {layout.num_classes} names under "
            f"{layout.names_key.decode()!r}"
        )
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]


class _SafeUnpickler(pickle.Unpickler):
    """Only containers, strings, numbers and numpy arrays: a tampered pickle cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): "numpy._core.multiarray",
        ("numpy._core.multiarray", "_reconstruct"): "numpy._core.multiarray",
        ("numpy.core.numeric", "_frombuffer"): "numpy._core.numeric",
        ("numpy._core.numeric", "_frombuffer"): "numpy._core.numeric",
        ("numpy", "ndarray"): "numpy",
        ("numpy", "dtype"): "numpy",
        ("_codecs", "encode"): "_codecs",
    }

    def find_class(self, module, name):
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(target, name)


def unpickle(data: bytes, where: str):
    """Unpickle one CIFAR batch (``encoding='bytes'``, allow-listed classes); DataError if malformed."""
    try:
        return _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # malformed pickles raise almost any exception type
        raise DataError(f"{where} is not a valid CIFAR pickle ({type(exc).__name__}: {exc})") from None


class _TarReader:
    """Reads members ``<folder>/<name>`` of a tarball without extracting anything to disk."""

    def __init__(self, path: Path, folder: str):
        self.path, self.folder = path, folder
        try:
            self.tar = tarfile.open(path, "r:gz")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is not a readable .tar.gz ({exc})") from None

    def __call__(self, name: str):
        member = f"{self.folder}/{name}"
        try:
            info = self.tar.getmember(member)
            f = self.tar.extractfile(info) if info.isfile() else None
            if f is None:
                raise KeyError(member)
            data = f.read()
        except KeyError:
            raise DataError(f"{self.path} has no file {member}; is it the official tarball?") from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{self.path} is truncated or corrupt while reading {member} ({exc})") from None
        return unpickle(data, f"{self.path}:{member}")

    def close(self):
        self.tar.close()


def _folder_reader(folder: Path):
    def read(name: str):
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} not found; the extracted CIFAR folder is incomplete")
        return unpickle(path.read_bytes(), str(path))

    return read
