import pytest
import torch
from torch.utils.data import DistributedSampler

from edgeprune.data import ImageDataset, load, make_loader
from edgeprune.errors import ConfigError


@pytest.fixture
def splits():
    return load("synthetic:classes=3,size=8,n=90,test=30")


def test_getitems_equals_stacking_getitem(splits):
    ds = splits.train
    idx = [4, 0, 17, 4, len(ds) - 1]
    x, y = ds.__getitems__(idx)
    items = [ds[i] for i in idx]
    assert torch.equal(x, torch.stack([i[0] for i in items]))
    assert y.dtype == torch.int64 and y.tolist() == [i[1] for i in items]
    assert isinstance(items[0][1], int) and items[0][0].dtype == torch.float32
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_loader_batches_cover_the_split_and_shuffle_is_seeded(splits):
    batches = list(splits.loader("val", batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 1] and batches[0][0].shape[1:] == (3, 8, 8)
    def order(seed):
        return torch.cat([y for _, y in splits.loader("train", 16, seed=seed)])
    ref = torch.cat([y for _, y in make_loader(splits.train, 16)])
    assert torch.equal(order(3), order(3)) and not torch.equal(order(3), ref)
    assert sorted(order(3).tolist()) == sorted(ref.tolist())
    assert len(list(make_loader(splits.train, 16, drop_last=True))) == len(splits.train) // 16


def test_sampler_is_used_and_cannot_mix_with_shuffle(splits):
    sampler = DistributedSampler(splits.test, num_replicas=2, rank=1, shuffle=False)
    ys = torch.cat([y for _, y in make_loader(splits.test, 8, sampler=sampler)])
    assert torch.equal(ys, splits.test.labels[1::2])
    with pytest.raises(ConfigError):
        make_loader(splits.test, 8, sampler=sampler, shuffle=True)
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        splits.loader("dev", 8)


def test_subset_keeps_settings_and_classes(splits):
    sub = splits.train.subset([0, 1, 2])
    assert len(sub) == 3 and sub.num_classes == 3 and sub.mean == splits.train.mean
    assert torch.equal(sub.images, splits.train.images[:3])
    assert sub.with_augment(True).images is sub.images  # shared storage
    assert (sub.in_channels, sub.image_size, sub.height, sub.width) == (3, 8, 8, 8)


def test_float_images_are_taken_as_unit_range():
    ds = ImageDataset(torch.full((2, 1, 4, 4), 0.5), torch.tensor([0, 1]), (0.5,), (0.5,))
    assert torch.all(ds[0][0] == 0)
