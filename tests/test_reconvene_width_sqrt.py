"""width='sqrt' keeps round(sqrt(d) x C) channels, so chains of insensitive layers keep about d of their weights."""

import copy
import math

import torch

from edgeprune import models
from edgeprune.methods.reconvene import pai_masks, rectify


def test_sqrt_width_keeps_more_channels_than_density_and_matches_the_formula():
    torch.manual_seed(0)
    model = models.create("vgg11", num_classes=10, in_channels=3, image_size=8)
    x = torch.zeros(1, 3, 8, 8)
    scores, masks = pai_masks(model, x, 0.9, "magnitude")
    _, _, dense_info = rectify(copy.deepcopy(model), x, masks, scores, width="density")
    _, _, sqrt_info = rectify(model, x, masks, scores, width="sqrt")
    assert dense_info["structured"] == sqrt_info["structured"] and sqrt_info["structured"]
    rows = {r["layer"]: r for r in sqrt_info["layers"]}
    dense_rows = {r["layer"]: r for r in dense_info["layers"]}
    for layer in sqrt_info["structured"]:
        r = rows[layer]
        assert r["channels_after"] == max(1, round(math.sqrt(1 - r["sparsity"]) * r["channels_before"]))
        assert r["channels_after"] > dense_rows[layer]["channels_after"]
    # a layer inside the chain (its producer shrank too) keeps about its UPaI share of weights
    chain = sqrt_info["structured"][1:]
    for layer in chain:
        r = rows[layer]
        budget = (1 - r["sparsity"]) * r["weights_before"]
        assert 0.5 * budget < r["weights_after"] < 2.0 * budget, layer
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)
