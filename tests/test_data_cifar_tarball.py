import pickle
import tarfile

import torch

from conftest import write_cifar_tarball
from edgeprune.data import load


def test_cifar10_from_tarball(tmp_path, trust_fixture_md5):
    trust_fixture_md5(write_cifar_tarball(tmp_path, "cifar10", n_per_batch=20))
    s = load("cifar10", tmp_path, val_fraction=0.1)
    assert (len(s.train), len(s.val), len(s.test)) == (90, 10, 20)
    assert (s.num_classes, s.in_channels, s.image_size) == (10, 3, 32)
    assert s.classes[:2] == ["c0", "c1"] and s.mean == (0.4914, 0.4822, 0.4465)
    assert s.train.augment and (s.train.crop_padding, s.train.hflip) == (4, True)
    assert not s.val.augment and not s.test.augment
    assert not load("cifar10", tmp_path, augment=False).train.augment


def test_cifar100_uses_fine_labels_and_pixel_layout(tmp_path, trust_fixture_md5):
    path = trust_fixture_md5(write_cifar_tarball(tmp_path, "cifar100", n_per_batch=30))
    with tarfile.open(path) as tar:
        batch = pickle.load(tar.extractfile("cifar-100-python/test"), encoding="bytes")
    s = load("cifar100", tmp_path)
    assert s.num_classes == 100 and len(s.classes) == 100
    assert torch.equal(s.test.labels, torch.tensor(batch[b"fine_labels"]))
    # row = 1024 red, 1024 green, 1024 blue values, row-major: image [3, 32, 32]
    assert torch.equal(s.test.images[0], torch.from_numpy(batch[b"data"][0].reshape(3, 32, 32)))


def test_extracted_folder_without_tarball(tmp_path, trust_fixture_md5):
    path = write_cifar_tarball(tmp_path, "cifar10", n_per_batch=10)
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path, filter="data")
    path.unlink()
    s = load("cifar10", tmp_path)
    assert (len(s.train) + len(s.val), len(s.test)) == (50, 10)
