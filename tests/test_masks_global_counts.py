"""global_masks prunes exactly round(p * N) weights under one threshold; ties go by global position."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.errors import ConfigError
from edgeprune.prune.masks import MaskBuilder, global_masks, masks_sparsity, prune_lowest


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), min_size=1, max_size=4), levels=st.integers(1, 5),
       p=st.floats(0.0, 0.999, allow_nan=False))
def test_exact_global_count_and_single_threshold(sizes, levels, p):
    g = torch.Generator().manual_seed(sum(sizes) + levels)
    scores = {f"l{i}": torch.randint(0, levels, (n,), generator=g).float() for i, n in enumerate(sizes)}
    masks = global_masks(scores, p)
    total = sum(sizes)
    k = round(p * total)
    assert sum(int((~m).sum()) for m in masks.values()) == k
    assert masks_sparsity(masks) == k / total
    kept = [s[m] for s, m in zip(scores.values(), masks.values()) if m.any()]
    pruned = [s[~m] for s, m in zip(scores.values(), masks.values()) if (~m).any()]
    if kept and pruned:
        assert float(torch.cat(pruned).max()) <= float(torch.cat(kept).min())  # one threshold
    # the kthvalue path (used by iterative SynFlow) agrees with the sort path, ties included
    flat_keep = prune_lowest(torch.cat(list(scores.values())), k)
    assert torch.equal(flat_keep, torch.cat(list(masks.values())))


def test_ties_across_layers_follow_key_order_and_selection():
    scores = {"a": torch.tensor([5.0, 1.0]), "b": torch.tensor([1.0, 1.0]), "c": torch.tensor([0.0, 9.0])}
    masks = global_masks(scores, 0.5)  # N = 6, prune 3: c[0] (0.0), then the 1.0s in order a[1], b[0]
    assert [m.tolist() for m in masks.values()] == [[True, False], [False, True], [False, True]]
    selected = global_masks(scores, 0.5, layers=["b", "a"])  # N = 4, prune 2 among a, b; c stays dense
    assert [m.tolist() for m in selected.values()] == [[True, False], [False, True], [True, True]]


def test_builder_keeps_no_copy_of_the_scores():
    g = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(3, 4, generator=g), "b": torch.rand(20, generator=g)}
    builder = MaskBuilder(scores)
    for p in (0.1, 0.5, 0.9):
        assert all(torch.equal(x, y) for x, y in zip(builder.global_(p).values(), global_masks(scores, p).values()))
        builder.layerwise({"a": p, "b": p})
    held = {t.untyped_storage().data_ptr() for t in vars(builder).values() if isinstance(t, torch.Tensor)}
    held |= {t.untyped_storage().data_ptr() for d in vars(builder).values() if isinstance(d, dict)
             for t in d.values() if isinstance(t, torch.Tensor)}
    assert held == {s.untyped_storage().data_ptr() for s in scores.values()}  # the scores themselves, nothing else


@pytest.mark.parametrize("bad", [1.0, -0.1])
def test_bad_global_sparsity_and_layers(bad):
    scores = {"a": torch.ones(4)}
    with pytest.raises(ConfigError, match=r"sparsity of global target must be in \[0, 1\)"):
        global_masks(scores, bad)
    with pytest.raises(ConfigError, match="unknown layer 'z'"):
        global_masks(scores, 0.5, layers=["z"])
    with pytest.raises(ConfigError, match="at least one layer"):
        global_masks(scores, 0.5, layers=[])
