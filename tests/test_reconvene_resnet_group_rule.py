"""group_rule='all' keeps a residual stream whole unless every member is insensitive; 'pooled' pools the weights."""

import pytest
import torch

from edgeprune import models
from edgeprune.methods.reconvene import generate

X = torch.zeros(1, 3, 8, 8)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return models.create("resnet20", num_classes=10, in_channels=3, image_size=8)


def test_pooled_and_all_rules_differ_on_a_group_with_a_sensitive_member(model):
    # magnitude at init: the stage-3 1x1 downsample conv (small fan-out, large weights) is pruned less than p
    _, _, pooled = generate(model, X, 0.9, "magnitude", group_rule="pooled")
    _, _, strict = generate(model, X, 0.9, "magnitude", group_rule="all")
    rows = {r["layer"]: r for r in pooled["layers"]}
    stage3 = next(g for g in pooled["groups"] if "layer3.0.downsample.0" in g["members"])
    assert not rows["layer3.0.downsample.0"]["insensitive"]
    assert any(rows[m]["insensitive"] for m in stage3["members"])
    assert stage3["structured"]  # pooled sparsity > p
    assert "layer3.0.downsample.0" in pooled["structured"]

    strict_stage3 = next(g for g in strict["groups"] if "layer3.0.downsample.0" in g["members"])
    assert not strict_stage3["insensitive"] and not strict_stage3["structured"]
    assert not set(stage3["members"]) & set(strict["structured"])
    # the inner convs are groups of one: the same verdict under both rules
    inner = sorted(r["layer"] for r in pooled["layers"] if r["layer"].endswith("conv1") and r["structured"])
    assert inner and inner == sorted(n for n in strict["structured"] if n.endswith("conv1"))
