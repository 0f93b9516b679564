"""Calibrating every strategy to a global target: within 0.1 pp, inside the ranges when possible."""

import pytest
import torch

from edgeprune import models, ranges, roles
from edgeprune.errors import ConfigError
from edgeprune.strategies import NAMES, build, build_all, duplicates, global_sparsity


@pytest.fixture(scope="module", params=[("resnet20", 16), ("vit", 32)])
def table(request):
    spec, size = request.param
    torch.manual_seed(0)
    model = models.create(spec, num_classes=10, in_channels=3, image_size=size)
    return roles.classify(model, torch.zeros(1, 3, size, size))


def test_every_strategy_hits_the_target(table):
    layer_ranges = ranges.rules(table)
    low = global_sparsity(build("min", layer_ranges, table), table)
    high = global_sparsity(build("max", layer_ranges, table), table)
    inside = round((low + high) / 2, 3)
    for target in (inside, 0.2, 0.9):
        built = build_all(layer_ranges, table, target_sparsity=target)
        for name in NAMES:
            assert abs(global_sparsity(built[name], table) - target) <= 0.001, (name, target)
        if target == inside:  # reachable inside the ranges: every layer stays in its range
            for name in NAMES:
                for p, s in built[name].items():
                    lo, hi = layer_ranges[p]
                    assert lo - 1e-12 <= s <= hi + 1e-12, (name, p)
        assert "p50" in duplicates(built)["balanced"]  # same start, same shift


def test_zero_ranges_are_never_touched_and_unreachable_targets_say_why(table):
    rules = ranges.RangeRules.build({"small": (0.0, 0.0), "small_fraction": None})  # the absolute 10 K rule
    layer_ranges = ranges.rules(table, rules)
    zero = [p for p, r in layer_ranges.items() if r == (0.0, 0.0)]
    assert zero  # both models have layers under 10k weights
    built = build("p50", layer_ranges, table, target_sparsity=0.6)
    assert all(built[p] == 0.0 for p in zero)
    assert abs(global_sparsity(built, table) - 0.6) <= 0.001
    with pytest.raises(ConfigError, match=r"unreachable.*\d\.\d{4}\.\.\d\.\d{4}"):
        build("p50", layer_ranges, table, target_sparsity=0.995)
    with pytest.raises(ConfigError, match="target sparsity must be in"):
        build("p50", layer_ranges, table, target_sparsity=1.0)
