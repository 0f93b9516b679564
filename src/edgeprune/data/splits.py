"""Deterministic, stratified index selection: validation/test carving and the ``limit`` cap.

Every function takes labels and a seed and returns sorted index arrays, so a split depends only on
(labels, fraction, seed) and never on global random state.
"""

from __future__ import annotations

import numpy as np

from edgeprune.errors import ConfigError, DataError

# Salts keep the random streams of different purposes apart when they share a seed.
SALT_TEST, SALT_VAL, SALT_LIMIT = 1, 2, 3


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), salt])


def class_quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest-remainder rounding).

    Ties in the remainder go to the class with the lower index, so the result is deterministic.
    """
    counts = np.asarray(counts, dtype=np.int64)
    exact = counts * (total / max(int(counts.sum()), 1))
    quota = np.floor(exact).astype(np.int64)
    short = total - int(quota.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
        for k in order:
            if short == 0:
                break
            if quota[k] < counts[k]:
                quota[k] += 1
                short -= 1
    return quota


def stratified_sample(labels, size: int, seed: int, salt: int = SALT_LIMIT) -> np.ndarray:
    """``size`` indices drawn without replacement, each class in proportion to its frequency."""
    labels = np.asarray(labels)
    size = int(size)
    if size >= len(labels):
        return np.arange(len(labels))
    rng = _rng(seed, salt)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = class_quotas(counts, size)
    picked = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        picked.append(rng.permutation(members)[: quota[k]])
    return np.sort(np.concatenate(picked)) if picked else np.arange(0)


def stratified_split(labels, fraction: float, seed: int, salt: int = SALT_VAL) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``labels`` into ``(rest, held_out)`` with ``held_out`` ≈ ``fraction`` of all.

    The held-out part has ``round(fraction * N)`` examples (at least 1, at most N-1), spread over the
    classes in proportion to their size. Both arrays are sorted and together cover every index once.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"split fraction must be in (0, 1), got {fraction!r}")
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        raise DataError(f"cannot split {n} example(s) into two non-empty parts; need at least 2")
    size = min(max(int(round(float(fraction) * n)), 1), n - 1)
    held = stratified_sample(labels, size, seed, salt)
    rest = np.setdiff1d(np.arange(n), held, assume_unique=True)
    return rest, held


# ``limit`` never caps a test set below this many examples: MNIST/CIFAR/digits tests stay whole and
# only huge test sets (e.g. a large image folder) are thinned for quick runs.
TEST_CAP_FLOOR = 10_000
LIMIT_SEED = 0
# --quick / quick=True: the train+val pool and the test split of a data set spec are stratified, seeded
# subsets of at most these many examples (``load(limit=QUICK_LIMIT, test_limit=QUICK_TEST_LIMIT)``)
QUICK_LIMIT = 1000
QUICK_TEST_LIMIT = 1000


def limit_indices(train_labels, test_labels, limit: int | None,
                  test_limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices kept by ``limit``: a stratified ``limit``-example subset of the train pool (train+val)
    and of the test pool at most ``max(limit, TEST_CAP_FLOOR)`` examples (``test_limit``, when given).

    The subsets use a fixed seed, independent of the run's seed, so every seed draws val from the same
    pool. Applying the function to its own output keeps it unchanged.
    """
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    train = np.arange(len(train_labels)) if limit is None else stratified_sample(train_labels, limit, LIMIT_SEED, SALT_LIMIT)
    test_cap = test_limit if test_limit is not None else None if limit is None else max(limit, TEST_CAP_FLOOR)
    test = np.arange(len(test_labels)) if test_cap is None else stratified_sample(test_labels, test_cap, LIMIT_SEED, SALT_LIMIT)
    return train, test
