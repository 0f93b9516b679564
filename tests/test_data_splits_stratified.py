import numpy as np
import pytest

from edgeprune.data import load
from edgeprune.data.splits import class_quotas, limit_indices, stratified_sample, stratified_split
from edgeprune.errors import ConfigError, DataError


def test_split_is_disjoint_covering_stratified_and_seeded():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    rest, held = stratified_split(labels, 0.1, seed=5)
    assert len(held) == 10 and np.intersect1d(rest, held).size == 0
    assert np.array_equal(np.sort(np.concatenate([rest, held])), np.arange(100))
    assert np.bincount(labels[held]).tolist() == [5, 3, 2]
    assert np.array_equal(held, stratified_split(labels, 0.1, seed=5)[1])
    assert not np.array_equal(held, stratified_split(labels, 0.1, seed=6)[1])


def test_quotas_sum_to_total_and_respect_counts():
    counts = np.array([7, 1, 3, 0, 9])
    for total in range(0, 21):
        q = class_quotas(counts, total)
        assert q.sum() == total and (q <= counts).all() and (q >= 0).all()


def test_tiny_splits_keep_both_parts_non_empty():
    rest, held = stratified_split(np.array([0, 1, 1]), 0.01, seed=0)
    assert len(held) == 1 and len(rest) == 2
    with pytest.raises(DataError):
        stratified_split(np.array([0]), 0.5, seed=0)


def test_limit_is_fixed_and_idempotent():
    train, test = np.arange(1000) % 7, np.arange(300) % 7
    keep_train, keep_test = limit_indices(train, test, 70)
    assert len(keep_train) == 70 and len(keep_test) == 300  # small test sets stay whole
    assert np.bincount(train[keep_train]).tolist() == [10] * 7
    again, _ = limit_indices(train[keep_train], test, 70)
    assert np.array_equal(again, np.arange(70))
    assert len(stratified_sample(np.zeros(20_000), 15_000, seed=0)) == 15_000


@pytest.mark.parametrize("kwargs", [{"val_fraction": 0.0}, {"val_fraction": 1.0}, {"val_fraction": -0.2},
                                    {"limit": 1}, {"limit": 2.5}, {"augment": "yes"}])
def test_bad_load_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError) as err:
        load("synthetic:n=64,size=8", **kwargs)
    assert str(list(kwargs.values())[0]) in str(err.value)
