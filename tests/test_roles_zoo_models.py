"""Roles of every zoo model: the counts per role follow from each architecture."""

import pytest
import torch

from edgeprune import models
from edgeprune.measure import prunable_weights
from edgeprune.roles import ROLES, classify

# spec -> (in_channels, image_size, expected non-zero role counts)
EXPECTED = {
    "lenet300": (1, 28, {"linear": 2, "classifier": 1}),
    "lenet5": (1, 28, {"conv": 2, "linear": 1, "classifier": 1}),
    "vgg11": (3, 32, {"conv": 8, "norm": 8, "linear": 1, "classifier": 1}),
    "resnet20": (3, 32, {"conv": 21, "norm": 21, "classifier": 1}),
    "resnet18": (3, 32, {"conv": 20, "norm": 20, "classifier": 1}),
    "vit": (3, 32, {"patch_embed": 1, "attn_qkv": 6, "attn_proj": 6, "mlp_in": 6, "mlp_out": 6, "norm": 13,
                    "classifier": 1}),
}


@pytest.mark.parametrize("spec", sorted(EXPECTED))
def test_zoo_model_roles(spec):
    channels, size, expected = EXPECTED[spec]
    model = models.create(spec, num_classes=10, in_channels=channels, image_size=size)
    table = classify(model, torch.zeros(1, channels, size, size))
    assert table.counts() == {r: expected.get(r, 0) for r in ROLES}
    # every prunable weight has exactly one row, in forward order, with its real size
    weights = prunable_weights(model)
    assert sorted(e.param_name for e in table.prunable()) == sorted(weights)
    for e in table.prunable():
        assert e.numel == weights[e.param_name].numel() and e.shape == tuple(weights[e.param_name].shape)
        assert e.small == (e.numel < 10_000) and 0.0 <= e.depth <= 1.0
    assert [e.order for e in table] == list(range(len(table)))
    assert table.prunable()[-1].role == "classifier"


def test_conv_depth_runs_over_convs_only():
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=28)
    table = classify(model, torch.zeros(1, 1, 28, 28))
    assert [(e.role, e.depth) for e in table.prunable()] == [
        ("conv", 0.0), ("conv", 1.0), ("linear", 2 / 3), ("classifier", 1.0)]


def test_vit_mlp_pairs_are_partners():
    model = models.create("vit", num_classes=10, in_channels=3, image_size=32)
    table = classify(model, torch.zeros(1, 3, 32, 32))
    pairs = table.mlp_pairs()
    assert len(pairs) == 6
    for fc1, fc2 in pairs:
        assert fc1.partner == fc2.module_name and fc2.partner == fc1.module_name
        assert fc1.shape[0] == fc2.shape[1] > fc1.shape[1] == fc2.shape[0]
    assert table.by_param(pairs[0][0].param_name) is pairs[0][0]
    with pytest.raises(KeyError):
        table.by_param("no.such.weight")


def test_classify_restores_mode_and_frozen_flags():
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=32).train()
    frozen = next(model.parameters())
    frozen.requires_grad_(False)
    model.bn1.eval()  # a frozen BatchNorm inside a training model keeps its own mode
    classify(model, torch.zeros(1, 3, 32, 32))
    assert model.training and not frozen.requires_grad and not model.bn1.training
    assert all(m.training for n, m in model.named_modules() if n != "bn1")
