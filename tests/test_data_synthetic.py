import pytest
import torch

from edgeprune.data import load
from edgeprune.errors import ConfigError


def test_options_shape_the_data_and_data_is_fixed():
    s = load("synthetic:classes=4,channels=1,size=8,n=100,test=40")
    assert (s.num_classes, s.in_channels, s.image_size) == (4, 1, 8)
    assert (len(s.train) + len(s.val), len(s.test)) == (100, 40)
    assert torch.equal(load("synthetic:classes=4,channels=1,size=8,n=100,test=40").test.images, s.test.images)
    assert len(load("synthetic").test) == 128  # defaults: 10 classes, 3x32x32, n=512, test=n//4


def test_class_signal_is_learnable_by_nearest_class_mean():
    s = load("synthetic:classes=5,size=16,n=400")
    x, y = s.train.__getitems__(range(len(s.train)))
    means = torch.stack([x[y == k].mean(0) for k in range(5)]).flatten(1)
    tx, ty = s.test.__getitems__(range(len(s.test)))
    pred = torch.cdist(tx.flatten(1), means).argmin(1)
    assert (pred == ty).float().mean() > 0.95


@pytest.mark.parametrize("spec, bad", [("synthetic:colour=3", "colour=3"), ("synthetic:classes=1", "classes=1"),
                                       ("synthetic:size=big", "size='big'"), ("synthetic:n", "'n'")])
def test_bad_options_raise_config_error(spec, bad):
    with pytest.raises(ConfigError) as err:
        load(spec)
    assert bad in str(err.value)
