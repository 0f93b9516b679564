"""data.resolve: a Data bundle as it is, a (train, val[, test]) tuple of loaders, a spec string; else ConfigError."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from edgeprune import data
from edgeprune.errors import ConfigError


def loader(n=12, shape=(3, 5, 7), batch_size=4):
    return DataLoader(TensorDataset(torch.randn(n, *shape), torch.arange(n) % 4), batch_size=batch_size)


def test_a_tuple_of_loaders_becomes_data_with_the_first_batch_shape():
    train, val, test = loader(), loader(6), loader(5)
    two = data.resolve((train, val))
    assert type(two) is data.Data and two.train is train and two.val is val and two.test is None
    assert two.input_shape == (3, 5, 7) and two.in_channels == 3 and two.image_size == 5
    assert two.num_classes is None and two.name == "loaders"
    three = data.resolve([train, val, test])
    assert three.test is test
    assert three.loader("train", 99) is train  # a user loader is used as it is
    named = data.Data.from_loaders(train, val, num_classes=4, name="mine")
    assert (named.num_classes, named.name) == (4, "mine")
    flat = data.Data.from_loaders(loader(shape=(64,)), val)
    assert flat.input_shape == (64,) and flat.in_channels == 64 and flat.image_size is None


def test_a_bundle_is_returned_as_it_is_and_a_spec_is_loaded():
    splits = data.resolve("digits", limit=100, val_fraction=0.2, seed=3)
    assert isinstance(splits, data.Splits) and isinstance(splits, data.Data)
    assert (splits.name, splits.num_classes, splits.input_shape) == ("digits", 10, (1, 8, 8))
    assert (splits.in_channels, splits.image_size) == (1, 8)
    assert len(splits.train) + len(splits.val) == 100 and len(splits.val) == 20 and splits.seed == 3
    assert data.resolve(splits) is splits
    mine = data.Data(loader(), loader(), input_shape=(3, 5, 7))
    assert data.resolve(mine) is mine
    assert splits.describe()["image_size"] == 8 and splits.loader("val", 7).batch_size == 7


@pytest.mark.parametrize("bad, needles", [
    (42, ["int", "Data bundle", "spec"]),
    (None, ["NoneType", "(train, val[, test])"]),
    ((loader(),), ["tuple", "1 items", "(train, val)"]),
    ([loader()] * 4, ["list", "4 items"]),
    (("digits", "mnist"), ["train data", "str", "DataLoader"]),
    ((loader(), loader(), "test"), ["test data", "str", "or None"]),
    ("no-such-set", ["no-such-set", "digits"]),
])
def test_anything_else_is_a_one_line_config_error(bad, needles):
    with pytest.raises(ConfigError) as info:
        data.resolve(bad)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_num_classes_must_be_positive_or_none():
    with pytest.raises(ConfigError, match=r"num_classes must be a positive integer or None \(unknown\), got 0"):
        data.Data.from_loaders(loader(), loader(), num_classes=0)
