"""make_permanent zeroes pruned weights once (also removing torch.nn.utils.prune hooks); masks_from_model reads them back."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from edgeprune import scores
from edgeprune.errors import ConfigError
from edgeprune.prune.masks import global_masks, make_permanent, masks_from_model


def test_make_permanent_then_read_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(16, 3))
    masks = global_masks(scores.compute("magnitude", model), 0.6)
    torch_prune.l1_unstructured(model[2], "weight", amount=0.1)  # a foreign reparametrisation is undone
    make_permanent(model, masks)
    assert not hasattr(model[2], "weight_orig") and isinstance(model[2].weight, nn.Parameter)
    read = masks_from_model(model)
    assert all(torch.equal(read[n], masks[n]) for n in masks)
    assert list(read) == ["0.weight", "2.weight"]


def test_shape_mismatch_is_a_config_error():
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ConfigError, match=r"mask of 0.weight has shape \(4, 3\)"):
        make_permanent(model, {"0.weight": torch.ones(4, 3, dtype=torch.bool)})
