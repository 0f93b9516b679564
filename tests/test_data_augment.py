import torch

from edgeprune.data import ImageDataset
from edgeprune.data.transforms import random_crop, random_hflip


def _dataset(augment=True, seed=0):
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    return ImageDataset(images, torch.arange(64) % 4, (0.5,) * 3, (0.25,) * 3,
                        augment=augment, crop_padding=2, hflip=True, seed=seed)


def test_augmentation_is_reproducible_and_changes_images():
    torch.manual_seed(0)
    ds = _dataset()
    idx = list(range(64))
    first, _ = ds.__getitems__(idx)
    again, _ = ds.__getitems__(idx)
    assert not torch.equal(first, again)  # the generator moves on: a new draw each epoch
    ds.reseed(0)
    assert torch.equal(ds.__getitems__(idx)[0], first)
    plain, _ = ds.with_augment(False).__getitems__(idx)
    assert first.shape == plain.shape and not torch.equal(first, plain)
    other = ds.with_augment(True).reseed(1).__getitems__(idx)[0]
    assert not torch.equal(other, first)


def test_crop_and_flip_move_pixels_not_values():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4) + 1
    gen = torch.Generator().manual_seed(3)
    crops = [random_crop(x, 1, gen) for _ in range(20)]
    for c in crops:
        assert c.shape == x.shape
        shown = c[c > 0]  # the zero padding aside, every pixel comes from the same image
        assert set(shown.tolist()) <= set(x.flatten().tolist())
    assert any(not torch.equal(c, x) for c in crops)
    flips = [random_hflip(x, gen) for _ in range(20)]
    assert all(torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(-1)) for f in flips for i in range(2))
    assert any(torch.equal(f[0], x[0].flip(-1)) for f in flips)


def test_no_augment_means_plain_normalisation():
    ds = _dataset(augment=False)
    x, y = ds.__getitems__([5])
    expected = (ds.images[5].float() / 255 - 0.5) / 0.25
    assert torch.allclose(x[0], expected, atol=1e-5) and y.tolist() == [1]
