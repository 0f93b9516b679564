"""Shared fixtures: where the real MNIST lives, and running the CLI in-process."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import edgeprune.methods.catalog  # noqa: F401  (the method registry, as the public API fills it: any test, any worker)

# Test models are tiny: one intra-op thread is faster than two and immune to a busy machine.
torch.set_num_threads(1)
# A fixed console width for rich's tables: pytest-xdist's workers have no terminal to measure, and a test's
# expectations should not depend on the window that launched it.
os.environ.setdefault("COLUMNS", "250")
# Latency tables are cached under $EDGEPRUNE_CACHE: a fresh folder per test process, never the user's home.
os.environ["EDGEPRUNE_CACHE"] = tempfile.mkdtemp(prefix="edgeprune-test-cache-")
atexit.register(shutil.rmtree, os.environ["EDGEPRUNE_CACHE"], ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The folder holding mnist/: $EDGEPRUNE_DATA, or shared/data next to the checkout."""
    for candidate in (os.environ.get("EDGEPRUNE_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture
def mnist_root() -> Path:
    root = shared_data_dir()
    if root is None:
        pytest.skip("real MNIST not present (set EDGEPRUNE_DATA or place shared/data/mnist next to the repo)")
    return root


@pytest.fixture
def run_cli(capsys):
    """Run ``edgeprune ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from edgeprune.cli import main

    def run(*args: str):
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


# --- data fixtures: tiny MNIST (gzip IDX) and CIFAR (pickle tarball) files written by the tests ------

import gzip
import hashlib
import io
import pickle
import tarfile

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as a gzip IDX file: magic 0x08<ndim>, big-endian dims, raw bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def md5_file(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A root holding mnist/ with 60 train and 20 test 6x6 images; its md5s are patched in as official."""
    from edgeprune.data import mnist

    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    for (images_name, labels_name), n in zip(mnist.FILES.values(), (60, 20)):
        write_idx(folder / images_name, rng.integers(0, 256, (n, 6, 6)))
        write_idx(folder / labels_name, np.arange(n) % 10)
    monkeypatch.setattr(mnist, "MD5S", {p.name: md5_file(p) for p in folder.iterdir()})
    return tmp_path


def write_cifar_tarball(root: Path, variant: str = "cifar10", n_per_batch: int = 20, *,
                        data_shape=None, labels_key=None) -> Path:
    """A tarball in the official CIFAR layout with random uint8 data; returns its path.

    ``data_shape`` / ``labels_key`` override the batch contents to build malformed fixtures.
    """
    from edgeprune.data.cifar import LAYOUTS

    layout = LAYOUTS[variant]
    rng = np.random.default_rng(1)
    members = {layout.meta_file: {layout.names_key: [f"c{k}".encode() for k in range(layout.num_classes)]}}
    for name in layout.train_files + layout.test_files:
        members[name] = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, data_shape or (n_per_batch, 3072), dtype=np.uint8),
            (labels_key or layout.labels_key): [int(v) for v in rng.integers(0, layout.num_classes, n_per_batch)],
        }
    path = root / layout.tarball
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in members.items():
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"{layout.folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


@pytest.fixture
def trust_fixture_md5(monkeypatch):
    """Register a fixture tarball's md5 as the official one, so the loader accepts it."""
    from edgeprune.data import cifar

    table = dict(cifar.MD5S)
    monkeypatch.setattr(cifar, "MD5S", table)

    def trust(path: Path) -> Path:
        table[path.name] = md5_file(path)
        return path

    return trust
