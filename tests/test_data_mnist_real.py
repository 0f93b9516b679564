import torch

from edgeprune.data import load


def test_real_mnist_is_complete_and_checked(mnist_root):
    s = load("mnist", mnist_root, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (54000, 6000, 10000)
    assert s.train.images.shape[1:] == (1, 28, 28) and s.train.images.dtype == torch.uint8
    assert torch.bincount(s.test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    x, y = s.val.__getitems__(list(range(256)))
    assert x.shape == (256, 1, 28, 28) and abs(x.mean().item()) < 0.2  # normalised by the MNIST constants
    quick = load("mnist", mnist_root, limit=1000)
    assert (len(quick.train), len(quick.val), len(quick.test)) == (900, 100, 10000)
