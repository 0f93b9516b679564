"""Role-rule ranges: which rule each layer gets, recipe overrides, and one-line errors naming the field."""

import pytest
import torch

from edgeprune import models, ranges, roles
from edgeprune.errors import ConfigError


def _table(spec, channels, size):
    torch.manual_seed(0)
    return roles.classify(models.create(spec, num_classes=10, in_channels=channels, image_size=size),
                          torch.zeros(1, channels, size, size))


def test_vgg_rules_small_conv_bands_linear_and_classifier():
    table = _table("vgg11", 3, 32)
    got = ranges.rules(table)
    assert list(got) == [e.param_name for e in table.prunable()]
    convs = [e for e in table.prunable() if e.role == "conv"]
    assert got[convs[0].param_name] == (0.0, 0.10)  # 1,728 weights: small overrides the conv rule
    expected_bands = {0.0: (0.40, 0.60), 0.143: (0.40, 0.60), 0.286: (0.40, 0.60), 0.429: (0.55, 0.70),
                      0.571: (0.55, 0.70), 0.714: (0.65, 0.80), 0.857: (0.75, 0.92), 1.0: (0.75, 0.92)}
    for e in convs[1:]:
        assert got[e.param_name] == expected_bands[round(e.depth, 3)]
    (hidden,) = table.by_role("linear")
    assert got[hidden.param_name] == (0.85, 0.98)  # VGG code's FC range
    (head,) = table.by_role("classifier")
    assert got[head.param_name] == (0.0, 0.10)  # 5,120 weights: small


def test_transformer_rules_and_classifier_size_threshold():
    table = _table("vit", 3, 32)
    got = ranges.rules(table, ranges.RangeRules.build(small_numel=0))
    by_role = {}
    for e in table.prunable():
        by_role.setdefault(e.role, []).append(got[e.param_name])
    assert by_role["patch_embed"] == [(0.15, 0.30)]
    assert by_role["attn_qkv"][0] == (0.10, 0.30) and by_role["attn_qkv"][-1] == (0.25, 0.45)  # rises with depth
    assert by_role["mlp_in"][0] == (0.30, 0.45) and by_role["mlp_out"][-1] == (0.40, 0.55)
    assert by_role["classifier"] == [(0.0, 0.30)]  # 640 of ~200k weights: a small share
    big_head = ranges.rules(table, ranges.RangeRules.build(small_numel=0, classifier_large_fraction=0.001))
    assert big_head[table.by_role("classifier")[0].param_name] == (0.85, 0.98)


def test_recipe_overrides_reach_lenet_sparsities():
    table = _table("lenet300", 1, 28)
    rules = ranges.RangeRules.build({"linear": [0.95, 0.995], "small": [0.5, 0.9]})
    got = ranges.rules(table, rules)
    assert got == {"features.1.weight": (0.95, 0.995), "features.3.weight": (0.95, 0.995),
                   "classifier.weight": (0.5, 0.9)}
    banded = ranges.RangeRules.build(conv=[[0.5, 0.1, 0.2], [1.0, 0.3, 0.4]])
    assert banded.range_for("conv", 0.49) == (0.1, 0.2) and banded.range_for("conv", 1.0) == (0.3, 0.4)


@pytest.mark.parametrize("bad,field", [
    ({"linear": [0.9, 0.5]}, "linear"),
    ({"small": [0.0, 1.0]}, "small"),
    ({"patch_embed": [-0.1, 0.2]}, "patch_embed"),
    ({"conv": [[0.5, 0.1, 0.2], [0.4, 0.3, 0.4]]}, "conv"),
    ({"mlp_in": [[0.5, 0.6, 0.2]]}, "mlp_in"),
    ({"ceiling": 1.0}, "ceiling"),
    ({"atn_qkv": [0.1, 0.2]}, "atn_qkv"),
])
def test_bad_rules_name_the_field(bad, field):
    with pytest.raises(ConfigError) as err:
        ranges.RangeRules.build(bad)
    message = str(err.value)
    assert field in message and "\n" not in message
