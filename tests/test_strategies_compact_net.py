"""On a compact net (~19 K parameters, every layer under the paper's 10 K "small" threshold) the ranges
adapt to the model, so the ten strategies stay distinct; with the paper's absolute rule they collapse, and
Mix-and-Match warns about the duplicates."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from edgeprune import ranges, roles, strategies
from edgeprune.methods.base import get_method


def compact_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def _distinct(rules: ranges.RangeRules, model, example) -> int:
    table = roles.classify(model, example)
    r = ranges.rules(table, rules)
    built = {s: strategies.build(s, r, table, 0.8) for s in strategies.NAMES}
    return len({tuple(sorted((p, round(v, strategies.DUPLICATE_DECIMALS)) for p, v in vec.items())) for vec in built.values()})


def test_strategies_stay_distinct_on_a_compact_net():
    torch.manual_seed(0)
    model, example = compact_net(), torch.zeros(1, 1, 16, 16)
    params = sum(p.numel() for p in model.parameters())
    assert 12_000 < params < 25_000 and max(p.numel() for p in model.parameters()) < 10_000
    paper = ranges.RangeRules.build({"small_fraction": None})  # absolute 10 K rule: every layer is small
    assert _distinct(ranges.RangeRules(), model, example) == 9  # all but balanced == p50 (equal by definition)
    assert _distinct(paper, model, example) <= 4

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no duplicate warning with the adaptive rule
        m = get_method("mix_and_match", criteria=["magnitude"], baselines=[])
        plan = m.candidates(m.prepare(model, None, example), [0.8], [0])
    assert len(plan) == 9
    m = get_method("mix_and_match", criteria=["magnitude"], baselines=[], range_rules={"small_fraction": None})
    with pytest.warns(UserWarning, match="identical per-layer sparsities"):
        plan = m.candidates(m.prepare(model, None, example), [0.8], [0])
    assert len(plan) <= 4


def test_the_duplicate_warning_names_a_typed_budget_as_the_user_wrote_it():
    from edgeprune.measure.budget import parse
    from edgeprune.methods.mam_common import strategy_candidates

    same = {"conv1": 0.5, "fc": 0.2}
    with pytest.warns(UserWarning, match=r"^at budget latency<=50% these strategies .*: early_heavy = late_heavy"):
        plan = strategy_candidates({"late_heavy": same, "early_heavy": dict(same)}, ["late_heavy", "early_heavy"],
                                   ["magnitude"], parse("latency<=50%"), [0])
    assert len(plan) == 1  # (was "at budget latency50pct", the file-name tag)
