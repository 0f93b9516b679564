"""Structured Mix-and-Match removes whole residual blocks when asked (``drop_blocks``): each depth is its own set
of candidates calibrated to the same budget, the least influential blocks go, and the model saves and loads
back with its blocks gone. Bad depths are one-line errors."""

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits")


def vit():
    torch.manual_seed(0)
    return models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=32, depth=3, num_heads=4)


@pytest.mark.slow
def test_blocks_leave_within_the_budget_and_load_back(digits, tmp_path):
    result = edgeprune.sweep(vit(), digits, method="mix_and_match", budgets=["macs<=50%"], out=tmp_path / "run",
                             finetune=0, progress=False, granularity="channel", criteria=["magnitude"],
                             strategies=["balanced"], calib_batches=2, drop_blocks=[0, 1], deploy_metrics=False)
    records = {r["id"]: r for r in result.records if r.get("kind") == "candidate"}
    assert set(records) == {"mam-magnitude-balanced-bmacs50pct-s0", "mam-magnitude-balanced-d1-bmacs50pct-s0"}
    shallow, wide = records["mam-magnitude-balanced-d1-bmacs50pct-s0"], records["mam-magnitude-balanced-bmacs50pct-s0"]
    for record in (shallow, wide):
        assert record["macs"] <= record["decided"]["limit"]
    (gone,) = shallow["decided"]["dropped_blocks"]
    assert wide["decided"]["dropped_blocks"] == []
    # with a block gone, the other layers need to lose fewer channels for the same MACs
    assert shallow["decided"]["shift"] < wide["decided"]["shift"]

    loaded = edgeprune.load(tmp_path / "run" / shallow["checkpoint"]).eval()
    assert isinstance(dict(loaded.named_modules())[gone], nn.Identity)
    assert sum(isinstance(b, nn.Identity) for b in loaded.blocks) == 1
    x = torch.randn(4, 1, 8, 8)
    assert loaded(x).shape == (4, 10)


@pytest.mark.parametrize("options, message", [
    ({"drop_blocks": [-1]}, "drop_blocks must be a list of integers >= 0"),
    ({"drop_blocks": "two"}, "drop_blocks must be a list of integers >= 0"),
    ({"drop_blocks": [4]}, "drop_blocks=4 but VisionTransformer has 3 removable residual block"),
    ({"drop_blocks": [1], "granularity": "weight"}, "drop_blocks=\\[1\\] needs granularity='channel'"),
])
def test_bad_depths_are_one_line_errors(digits, options, message):
    options = {"granularity": "channel", **options}
    with pytest.raises(ConfigError, match=message):
        edgeprune.prune(vit(), digits, method="mix_and_match", budget="macs<=50%" if options["granularity"] ==
                        "channel" else 0.5, finetune=0, criteria=["magnitude"], strategies=["balanced"],
                        calib_batches=1, deploy_metrics=False, progress=False, **options)


def test_a_model_without_residual_blocks_says_so(digits):
    with pytest.raises(ConfigError, match="has 0 removable residual block"):
        edgeprune.prune(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), digits,
                        method="mix_and_match", granularity="channel", budget="macs<=50%", finetune=0,
                        criteria=["magnitude"], strategies=["balanced"], drop_blocks=[1], deploy_metrics=False,
                        progress=False)


@pytest.mark.slow
def test_a_depth_that_cannot_meet_the_budget_is_left_out_with_a_warning(digits):
    # 20 % of the MACs is out of reach for channels alone with widths multiples of 32 (the 32-wide stream and
    # attention keep their width), but not with two of three blocks gone
    with pytest.warns(UserWarning, match="drop_blocks=0: budget macs<=20% cannot be met"):
        pruned = edgeprune.prune(vit(), digits, method="mix_and_match", granularity="channel", budget="macs<=20%",
                                 finetune=0, criteria=["magnitude"], strategies=["balanced"], calib_batches=1,
                                 drop_blocks=[0, 2], round_to=32, deploy_metrics=False, progress=False)
    assert len(pruned.candidates) == 1 and pruned.record["decided"]["dropped_blocks"]
