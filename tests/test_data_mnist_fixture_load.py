import numpy as np
import pytest
import torch

from conftest import md5_file, write_idx
from edgeprune.data import load
from edgeprune.data import mnist as mnist_mod
from edgeprune.errors import DataError


def test_fixture_mnist_loads_with_standard_stats(fake_mnist):
    s = load("mnist", fake_mnist, val_fraction=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (48, 12, 20)
    assert (s.in_channels, s.image_size, s.num_classes) == (1, 6, 10)
    assert s.mean == (0.1307,) and s.std == (0.3081,)
    assert s.classes == [str(d) for d in range(10)]
    assert torch.bincount(s.val.labels, minlength=10).tolist() == [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]  # stratified


def test_env_variable_is_the_default_root(fake_mnist, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_DATA", str(fake_mnist))
    assert len(load("mnist").test) == 20


def test_count_mismatch_and_bad_label_raise(fake_mnist, monkeypatch):
    folder = fake_mnist / "mnist"
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, np.arange(19) % 10)
    monkeypatch.setitem(mnist_mod.MD5S, labels.name, md5_file(labels))
    with pytest.raises(DataError, match="20 images in t10k-images-idx3-ubyte.gz but 19 labels"):
        load("mnist", fake_mnist)
    write_idx(labels, np.full(20, 12))
    monkeypatch.setitem(mnist_mod.MD5S, labels.name, md5_file(labels))
    with pytest.raises(DataError, match="label 12"):
        load("mnist", fake_mnist)
