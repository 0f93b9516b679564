"""A group of channels that a grouped convolution or a GroupNorm splits keeps the width asked for, in multiples of
the channel block: torch-pruning rounds the count it removes from EACH channel group against the whole width,
so a RegNet group of 48 channels in 2 groups asked to keep 32 in multiples of 16 kept 16. The width calibration
predicts (without pruning) is the width pruning gives."""

import pytest
import torch
from torch import nn

from edgeprune.select import latency_table
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import kept_channels
from edgeprune.surgery.structure import plan as plan_structure

EXAMPLE = torch.randn(2, 3, 16, 16)


class Grouped(nn.Module):
    """stem -> 1x1 -> 3x3 conv in 2 groups (RegNet's) -> 1x1 -> GroupNorm'd conv -> classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.a = nn.Conv2d(32, 48, 1)
        self.b = nn.Conv2d(48, 48, 3, padding=1, groups=2)
        self.c = nn.Conv2d(48, 64, 1)
        self.gn = nn.GroupNorm(8, 64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.b(torch.relu(self.a(torch.relu(self.stem(x))))))
        return self.fc(torch.relu(self.gn(self.c(x))).mean((2, 3)))


@pytest.mark.parametrize("fraction, round_to, widths", [
    (1 / 3, 16, {"a": 32, "b": 32, "c": 32}),  # torch-pruning alone: a and b 16 (8 of 24 per group)
    (0.1, 16, {"a": 32, "b": 32, "c": 48}),
    (1 / 3, 1, {"a": 32, "b": 32, "c": 40}),  # odd widths: multiples of the channel groups
    (0.5, 8, {"a": 24, "b": 24, "c": 32}),
])
def test_grouped_layers_keep_the_width_asked(fraction, round_to, widths):
    torch.manual_seed(0)
    model = Grouped().eval()
    structure = plan_structure(model, EXAMPLE)
    fractions = {n: fraction for n in ("a", "b", "c")}
    got = prune_channels(model, EXAMPLE, structure, fractions, round_to=round_to)
    assert {n: got[n] for n in widths} == widths
    assert model(EXAMPLE).shape == (2, 10)
    predicted = latency_table.predicted_widths(latency_table.census(Grouped().eval(), EXAMPLE), structure,
                                               fractions, round_to, Grouped().eval())
    assert {n: predicted[n][1] for n in widths} == widths


@pytest.mark.parametrize("channels, fraction, round_to, groups, kept", [
    (48, 1 / 3, 16, 2, 32), (48, 0.9, 16, 2, 16), (48, 1 / 3, 16, 3, 48), (64, 0.5, 1, 8, 32),
    (64, 0.45, 1, 8, 32), (16, 0.5, 16, 1, 16), (10, 0.95, 1, 1, 1), (24, 0.5, 4, 6, 12),
])
def test_kept_channels(channels, fraction, round_to, groups, kept):
    assert kept_channels(channels, fraction, round_to, groups) == kept
