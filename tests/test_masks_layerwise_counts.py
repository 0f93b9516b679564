"""layerwise_masks prunes exactly floor(s * n) lowest scores per layer; ties go by flat index."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.errors import ConfigError
from edgeprune.prune.masks import MaskBuilder, layerwise_masks, per_layer_sparsity


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=4),
    levels=st.integers(1, 4),  # few distinct values -> many ties
    data=st.data(),
)
def test_exact_floor_counts_and_index_tie_break(sizes, levels, data):
    g = torch.Generator().manual_seed(len(sizes) * 100 + levels)
    scores = {f"l{i}.weight": torch.randint(0, levels, (n,), generator=g).float().reshape(n, 1) for i, n in enumerate(sizes)}
    sparsities = {name: data.draw(st.floats(0.0, 0.999, allow_nan=False)) for name in scores
                  if data.draw(st.booleans())}
    masks = layerwise_masks(scores, sparsities)
    for name, score in scores.items():
        mask = masks[name]
        assert mask.shape == score.shape and mask.dtype == torch.bool
        n = score.numel()
        k = math.floor(sparsities[name] * n) if name in sparsities else 0
        assert int((~mask).sum()) == k
        # reference: stable ascending order of (score, index); the first k are pruned
        order = sorted(range(n), key=lambda i: (float(score.reshape(-1)[i]), i))
        expected = torch.ones(n, dtype=torch.bool)
        expected[order[:k]] = False
        assert torch.equal(mask.reshape(-1), expected)


def test_ties_prune_lower_index_first():
    scores = {"w": torch.tensor([[1.0, 0.0, 0.0, 0.0, 2.0]])}
    assert layerwise_masks(scores, {"w": 0.4})["w"].tolist() == [[True, False, False, True, True]]


def test_missing_layers_stay_dense_and_sparsity_is_reported():
    scores = {"a": torch.arange(10.0), "b": torch.arange(4.0)}
    masks = layerwise_masks(scores, {"a": 0.35})
    assert per_layer_sparsity(masks) == {"a": 0.3, "b": 0.0}


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), "x"])
def test_out_of_range_sparsity_names_the_layer(bad):
    with pytest.raises(ConfigError, match=r"sparsity of conv1.weight must be .*\[0, 1\)"):
        layerwise_masks({"conv1.weight": torch.ones(3)}, {"conv1.weight": bad})


def test_unknown_layer_and_nan_scores_are_rejected():
    with pytest.raises(ConfigError, match="unknown layer 'fc.weight'"):
        layerwise_masks({"conv1.weight": torch.ones(3)}, {"fc.weight": 0.5})
    with pytest.raises(ConfigError, match="contain NaN"):
        MaskBuilder({"w": torch.tensor([1.0, float("nan")])})
    with pytest.raises(ConfigError, match="no prunable layer"):
        MaskBuilder({})
