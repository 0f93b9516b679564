"""calibration_batches: seeded, shuffled, full batches from the training split, augmentation off."""

import torch

from edgeprune import data, scores


def test_calibration_batches_from_digits_training_split():
    splits = data.load("digits", seed=0)
    a = scores.calibration_batches(splits.train, 3, batch_size=16, seed=1)
    b = scores.calibration_batches(splits, 3, batch_size=16, seed=1)  # a Splits bundle means its train split
    c = scores.calibration_batches(splits.train, 3, batch_size=16, seed=2)
    assert len(a) == 3
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.shape == (16, 1, 8, 8) and ya.shape == (16,) and ya.dtype == torch.int64
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])
    # drawn without replacement from the training images (shuffled, not the first 48)
    train_x, _ = splits.train.with_augment(False).__getitems__(list(range(len(splits.train))))
    flat_train = train_x.reshape(len(train_x), -1)
    picked = torch.cat([x for x, _ in a]).reshape(48, -1)
    rows = [int(torch.nonzero((flat_train == r).all(1))[0]) for r in picked]
    assert len(set(rows)) == 48 and rows != list(range(48))


def test_more_batches_than_examples_start_a_new_pass():
    dataset = [(torch.full((2,), float(i)), i % 2) for i in range(5)]
    batches = scores.calibration_batches(dataset, 3, batch_size=4, seed=0)
    assert [len(y) for _, y in batches] == [4, 4, 4]
    first_pass = torch.cat([x[:, 0] for x, _ in batches])[:5]
    assert sorted(first_pass.tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
