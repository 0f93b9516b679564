"""Reconvene on couplings the zoo showed: grouped convs lose the same positions in every group, a reshape to a
hard-coded width (invisible to torch-pruning) leaves that layer unstructured with the reason, and a run that
removes nothing says why."""

import torch
from torch import nn

from edgeprune.methods.reconvene import generate


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.a = nn.Conv2d(16, 32, 1)
        self.b = nn.Conv2d(32, 32, 3, padding=1, groups=4)  # RegNet-style grouped conv
        self.norm = nn.GroupNorm(4, 32)
        self.c = nn.Conv2d(32, 16, 1)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.c(self.norm(self.b(self.a(self.stem(x)).relu())).relu())
        return self.head(x.mean((2, 3)))


class HardReshape(nn.Module):
    """Like PVT's spatial reduction: the model reshapes a conv's output with a width fixed at construction."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.sr = nn.Conv2d(8, 24, 4, stride=4)  # the largest fan-in: smallest init weights, pruned hardest
        self.width = 24
        self.mix = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8 + 24, 5)

    def forward(self, x):
        x = self.stem(x).relu()
        r = self.sr(x).reshape(x.shape[0], self.width, -1).mean(-1)
        return self.head(torch.cat([self.mix(x).mean((2, 3)), r], 1))


def test_grouped_convs_keep_their_group_count():
    torch.manual_seed(0)
    model, example = Grouped(), torch.zeros(1, 3, 16, 16)
    pruned, masks, info = generate(model, example, 0.9, "magnitude")
    assert pruned(example).shape == (1, 5)
    for m in (pruned.a, pruned.b, pruned.norm):
        channels = m.out_channels if isinstance(m, nn.Conv2d) else m.num_channels
        assert channels % 4 == 0
    assert pruned.b.groups == 4 and pruned.b.in_channels == pruned.a.out_channels
    assert info["structured"]  # something was removed
    for name, mask in masks.items():
        assert mask.shape == dict(pruned.named_parameters())[name].shape


def test_coupling_torch_pruning_cannot_see_is_left_unstructured():
    torch.manual_seed(0)
    model, example = HardReshape(), torch.zeros(1, 3, 16, 16)
    pruned, _, info = generate(model, example, 0.9, "magnitude", weighted=True)
    assert pruned(example).shape == (1, 5)
    assert pruned.sr.out_channels == 24
    reasons = {tuple(g["members"]): g["reason"] for g in info["groups"]}
    assert reasons[("sr",)].startswith("coupled in a way torch-pruning cannot handle (pruning it breaks the model")
    assert "1 group: coupled in a way torch-pruning cannot handle" in info["nothing_removed"]


def test_nothing_removed_says_why():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.LazyLinear(5))
    example = torch.zeros(1, 3, 8, 8)
    model(example)
    _, _, info = generate(model, example, 0.1, "magnitude", keep="zero_filters")
    assert not info["structured"]  # at 10 % no filter is all zero
    assert info["nothing_removed"].startswith("Reconvene removed no channel (")
