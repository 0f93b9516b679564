from collections import Counter

import numpy as np
import torch

from edgeprune.data import load


def _rows(ds):
    return Counter((x.numpy().tobytes(), int(y)) for x, y in zip(ds.images, ds.labels))


def test_digits_sizes_shapes_and_partition():
    s = load("digits", seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (1294, 144, 359)
    assert (s.num_classes, s.in_channels, s.image_size) == (10, 1, 8)
    assert s.train.images.dtype == torch.uint8 and s.train.images.max() == 255
    assert not s.train.augment and not s.val.augment and not s.test.augment
    # train, val and test together are exactly the 1797 digits, each used once
    from sklearn.datasets import load_digits

    raw = load_digits()
    pixels = np.rint(raw.images * 255 / 16).astype(np.uint8)[:, None]
    everything = Counter((p.tobytes(), int(t)) for p, t in zip(pixels, raw.target))
    assert _rows(s.train) + _rows(s.val) + _rows(s.test) == everything


def test_digits_val_is_seeded_and_test_is_fixed():
    a, b, c = load("digits", seed=0), load("digits", seed=0), load("digits", seed=1)
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.val.images, c.val.images)
    assert torch.equal(a.test.images, c.test.images)  # test never moves with the seed
    # stratified: every class is in val, in proportion
    counts = torch.bincount(a.val.labels, minlength=10)
    assert counts.min() >= 13 and counts.max() <= 16


def test_digits_stats_from_train_and_limit():
    s = load("digits", limit=200, val_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (150, 50, 359)
    x = s.train.images.float() / 255
    assert abs(x.mean().item() - s.mean[0]) < 1e-4 and abs(x.std().item() - s.std[0]) < 1e-3
    assert torch.equal(load("digits", limit=200, seed=3).test.images, s.test.images)
