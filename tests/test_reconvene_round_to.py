"""round_to rounds each structurally pruned layer's kept channels up to a multiple (capped at the layer's width)."""

import copy
import math

import pytest
import torch

from edgeprune import models
from edgeprune.errors import ConfigError
from edgeprune.methods.reconvene import pai_masks, rectify


def test_kept_channels_are_multiples_of_round_to_or_the_full_width():
    torch.manual_seed(0)
    model = models.create("vgg11", num_classes=10, in_channels=1, image_size=8)
    x = torch.zeros(1, 1, 8, 8)
    scores, masks = pai_masks(model, x, 0.95, "magnitude")
    _, _, plain = rectify(copy.deepcopy(model), x, masks, scores)
    _, _, rounded = rectify(copy.deepcopy(model), x, masks, scores, round_to=8)
    assert rounded["round_to"] == 8
    plain_rows = {r["layer"]: r for r in plain["layers"]}
    structured = [r for r in rounded["layers"] if r["structured"]]
    assert structured
    for row in structured:
        before, after = row["channels_before"], row["channels_after"]
        expected = min(before, math.ceil(plain_rows[row["layer"]]["channels_after"] / 8) * 8)
        assert after == expected and (after % 8 == 0 or after == before)
    assert any(plain_rows[r["layer"]]["channels_after"] % 8 for r in structured)  # rounding changed something


@pytest.mark.parametrize("bad", [0, -8, 2.5, True])
def test_bad_round_to_is_refused(bad):
    torch.manual_seed(0)
    model = models.create("vgg11", num_classes=10, in_channels=1, image_size=8)
    x = torch.zeros(1, 1, 8, 8)
    scores, masks = pai_masks(model, x, 0.9, "magnitude")
    with pytest.raises(ConfigError, match="round_to must be an integer >= 1"):
        rectify(model, x, masks, scores, round_to=bad)
