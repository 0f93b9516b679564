"""Pruning Sensitivity Evaluator on constructed masks: weighted (= p) vs unweighted average, strict '>'."""

import pytest
import torch

from edgeprune.methods.reconvene import evaluate_sensitivity


def _mask(n: int, pruned: int) -> torch.Tensor:
    m = torch.ones(n, dtype=torch.bool)
    m[:pruned] = False
    return m.reshape(n, 1)


MASKS = {
    "a.weight": _mask(100, 60),  # 0.6
    "b.weight": _mask(1000, 700),  # 0.7
    "c.weight": _mask(10, 1),  # 0.1
    "fc.weight": _mask(10_000, 9_900),  # 0.99, a Linear: counts in the weighted average only
}
CONVS = ["a.weight", "b.weight", "c.weight"]


def test_weighted_average_is_the_global_sparsity_and_no_conv_exceeds_it():
    pse = evaluate_sensitivity(MASKS, CONVS, weighted=True)
    assert pse.average == pytest.approx((60 + 700 + 1 + 9_900) / 11_110)
    assert pse.sparsity == pytest.approx({"a.weight": 0.6, "b.weight": 0.7, "c.weight": 0.1})
    assert pse.insensitive_layers == []


def test_unweighted_average_is_the_mean_of_conv_layers():
    pse = evaluate_sensitivity(MASKS, CONVS, weighted=False)
    assert pse.average == pytest.approx((0.6 + 0.7 + 0.1) / 3)
    assert pse.insensitive == {"a.weight": True, "b.weight": True, "c.weight": False}


def test_a_layer_exactly_at_the_average_is_sensitive():
    masks = {"a.weight": _mask(100, 90), "b.weight": _mask(100, 90), "c.weight": _mask(100, 95)}
    pse = evaluate_sensitivity(masks, ["a.weight", "b.weight", "c.weight"], weighted=False)
    assert pse.average == pytest.approx(275 / 300)
    assert pse.insensitive_layers == ["c.weight"]
    masks = {"a.weight": _mask(100, 50), "b.weight": _mask(100, 50)}
    assert evaluate_sensitivity(masks, ["a.weight", "b.weight"]).insensitive_layers == []
