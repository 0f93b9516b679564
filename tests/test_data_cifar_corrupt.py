import pickle

import pytest

from conftest import write_cifar_tarball
from edgeprune.data import cifar, load
from edgeprune.errors import DataError


def test_wrong_md5_is_refused_before_unpickling(tmp_path, monkeypatch):
    write_cifar_tarball(tmp_path, "cifar10")
    monkeypatch.setattr(cifar, "unpickle", lambda *a: pytest.fail("unpickled an unverified file"))
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz has md5 [0-9a-f]{32}, expected c58f30108f"):
        load("cifar10", tmp_path)


def test_wrong_shapes_and_missing_labels(tmp_path, trust_fixture_md5):
    trust_fixture_md5(write_cifar_tarball(tmp_path, "cifar10", data_shape=(20, 3000)))
    with pytest.raises(DataError, match=r"data_batch_1: 'data' must be uint8 \[N, 3072\], found uint8 \(20, 3000\)"):
        load("cifar10", tmp_path)
    trust_fixture_md5(write_cifar_tarball(tmp_path, "cifar100", labels_key=b"coarse_labels"))
    with pytest.raises(DataError, match="batch train has no 'fine_labels' entry"):
        load("cifar100", tmp_path)


def test_truncated_tarball(tmp_path, trust_fixture_md5):
    path = write_cifar_tarball(tmp_path, "cifar10")
    path.write_bytes(path.read_bytes()[:3000])
    trust_fixture_md5(path)
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load("cifar10", tmp_path)


def test_pickle_that_runs_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    evil = pickle.dumps(eval, protocol=2)  # any global outside the allow-list
    for name in ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(evil)
    with pytest.raises(DataError, match="refusing to load .*eval"):
        load("cifar10", tmp_path)


def test_missing_cifar_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="put cifar-100-python.tar.gz there.*download=True"):
        load("cifar100", tmp_path)
