"""scikit-learn's bundled 8×8 digits: 1797 grayscale images, 10 classes, no download.

The set has no official test split, so a fixed stratified 20% test split is carved with seed 0,
independent of the run's seed: every run and every seed is evaluated on the same 360 images.
"""

from __future__ import annotations

import numpy as np
import torch

from edgeprune.data.base import RawData
from edgeprune.data.splits import SALT_TEST, stratified_split

TEST_FRACTION = 0.2
TEST_SEED = 0


def load_digits() -> RawData:
    """The digits as uint8 [N, 1, 8, 8] (0..16 scaled to 0..255) with the fixed test split."""
    from sklearn.datasets import load_digits as sklearn_digits  # noqa: PLC0415  (scikit-learn takes ~1 s to import)

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, TEST_SEED, salt=SALT_TEST)
    images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)
    return RawData(
        name="digits",
        train_images=images_t[train_idx], train_labels=labels_t[train_idx],
        test_images=images_t[test_idx], test_labels=labels_t[test_idx],
        classes=[str(c) for c in bunch.target_names], mean=None, std=None,
        augment=False, crop_padding=1, hflip=False,
    )
