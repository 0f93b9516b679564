import os

import pytest

from edgeprune.data import checksum, load
from edgeprune.data import mnist as mnist_mod
from edgeprune.errors import DataError


def test_wrong_md5_names_file_expected_and_found(fake_mnist, monkeypatch):
    path = fake_mnist / "mnist" / "train-labels-idx1-ubyte.gz"
    found = mnist_mod.MD5S[path.name]
    monkeypatch.setitem(mnist_mod.MD5S, path.name, "0" * 32)
    with pytest.raises(DataError) as err:
        load("mnist", fake_mnist)
    message = str(err.value)
    assert str(path) in message and f"md5 {found}" in message and "expected " + "0" * 32 in message
    assert "\n" not in message


def test_official_md5s_reject_fixture_files(fake_mnist, monkeypatch):
    monkeypatch.undo()  # back to the official table
    with pytest.raises(DataError, match="expected f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        load("mnist", fake_mnist)


def test_missing_folder_says_how_to_fix(tmp_path):
    with pytest.raises(DataError) as err:
        load("mnist", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert "--data-dir" in message and "EDGEPRUNE_DATA" in message and "download=True" in message


def test_md5_is_cached_per_path_size_mtime(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    calls = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: (calls.append(a[0]), real_open(*a, **k))[1])
    first = checksum.md5_of(path)
    assert checksum.md5_of(path) == first == "900150983cd24fb0d6963f7d28e17f72" and len(calls) == 1
    path.write_bytes(b"abd")
    os.utime(path, ns=(1, 1))
    assert checksum.md5_of(path) != first and len(calls) == 2
