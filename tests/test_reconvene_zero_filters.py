"""keep='zero_filters' removes exactly the all-zero filters and keeps the rest of the mask (lossless)."""

import pytest
import torch
from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.methods.reconvene import rectify


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean((2, 3)))


def _masks(net, zero_filters):
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in net.named_parameters() if p.ndim >= 2}
    m2 = masks["conv2.weight"]
    m2[list(zero_filters)] = False  # whole filters pruned
    m2[0, 0] = False  # and a few single weights in a surviving filter
    m2[7, 3, 1] = False
    return masks


def test_only_the_all_zero_filters_go_and_the_remaining_mask_is_kept_sliced():
    torch.manual_seed(0)
    net = TinyNet()
    masks = _masks(net, {1, 2, 5, 6})  # conv2: 50% + a bit pruned, conv1 dense -> conv2 is insensitive
    scores = {n: torch.rand(m.shape) for n, m in masks.items()}
    _, new_masks, info = rectify(net, torch.zeros(1, 1, 6, 6), masks, scores, keep="zero_filters")
    assert info["structured"] == ["conv2"]
    assert info["removed"]["conv2"]["out"] == [1, 2, 5, 6]
    assert net.conv2.weight.shape == (4, 4, 3, 3) and net.head.weight.shape == (3, 4)
    assert torch.equal(new_masks["conv2.weight"], masks["conv2.weight"][[0, 3, 4, 7]])  # lossless: mask kept
    assert int((net.conv2.weight == 0).sum()) == 9 + 3  # the pruned kernel of filter 0 and row of filter 7
    assert torch.equal(new_masks["head.weight"], masks["head.weight"][:, [0, 3, 4, 7]])
    assert net(torch.randn(2, 1, 6, 6)).shape == (2, 3)


def test_a_layer_whose_filters_are_all_zero_is_refused_by_name():
    torch.manual_seed(0)
    net = TinyNet()
    masks = _masks(net, range(8))
    scores = {n: torch.rand(m.shape) for n, m in masks.items()}
    with pytest.raises(ConfigError, match="would remove every channel of layer 'conv2'"):
        rectify(net, torch.zeros(1, 1, 6, 6), masks, scores, keep="zero_filters")
    assert net.conv2.weight.shape == (8, 4, 3, 3)
