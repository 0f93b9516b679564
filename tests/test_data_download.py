import hashlib

import pytest

from conftest import md5_file
from edgeprune.data import load
from edgeprune.data import mnist as mnist_mod
from edgeprune.data.download import download
from edgeprune.errors import ConfigError, DataError


def test_file_url_download_checks_md5(tmp_path):
    source = tmp_path / "mirror" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(b"hello edgeprune")
    dest = tmp_path / "data" / "blob.bin"
    md5 = hashlib.md5(b"hello edgeprune").hexdigest()
    missing = (tmp_path / "nowhere" / "blob.bin").as_uri()
    assert download([missing, source.as_uri()], dest, md5) == dest  # the second mirror answers
    assert dest.read_bytes() == b"hello edgeprune"


def test_wrong_md5_leaves_nothing_behind(tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(b"tampered")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DataError) as err:
        download(source.as_uri(), dest, "0" * 32)
    assert f"md5 {md5_file(source)}, expected {'0' * 32}" in str(err.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_unreachable_mirrors_say_no_network(tmp_path):
    with pytest.raises(DataError, match=r"may have no network: copy the file to .*blob\.bin"):
        download([(tmp_path / "gone").as_uri()], tmp_path / "blob.bin", "0" * 32)
    with pytest.raises(ConfigError, match="scheme 'ftp'"):
        download("ftp://example.org/x", tmp_path / "x", "0" * 32)


def test_mnist_download_true_fetches_missing_files(fake_mnist, tmp_path, monkeypatch):
    mirror = (fake_mnist / "mnist").as_uri() + "/"
    monkeypatch.setattr(mnist_mod, "MNIST_MIRRORS", ((tmp_path / "dead").as_uri() + "/", mirror))
    target = tmp_path / "fresh"
    with pytest.raises(DataError, match="download=True"):
        load("mnist", target)
    s = load("mnist", target, download=True)
    assert len(s.test) == 20 and sorted(p.name for p in (target / "mnist").iterdir()) == sorted(mnist_mod.MD5S)
