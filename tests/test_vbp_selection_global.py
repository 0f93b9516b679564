"""Selection: global ranking takes the lowest scores across blocks; per-layer mode; the min_keep guard."""

import pytest
import torch

from edgeprune.errors import ConfigError
from edgeprune.prune.neurons import select_lowest


def test_global_ranking_picks_lowest_across_blocks():
    scores = {
        "a": torch.tensor([0.1, 5.0, 0.2, 6.0], dtype=torch.float64),
        "b": torch.tensor([3.0, 0.05, 4.0, 0.3, 7.0, 0.15], dtype=torch.float64),
    }
    chosen = select_lowest(scores, 0.5)  # 5 of 10: 0.05, 0.1, 0.15, 0.2, 0.3
    assert chosen["a"].tolist() == [0, 2]
    assert chosen["b"].tolist() == [1, 3, 5]
    flat = torch.cat([scores["a"], scores["b"]])
    picked = torch.cat([scores["a"][chosen["a"]], scores["b"][chosen["b"]]])
    assert picked.max() < flat[flat > picked.max()].min()  # nothing kept scores below anything pruned


def test_per_layer_prunes_the_ratio_in_every_block():
    scores = {"a": torch.tensor([4.0, 1.0, 3.0, 2.0]), "b": torch.arange(10.0, 0.0, -1.0)}
    chosen = select_lowest(scores, 0.5, per_layer=True)
    assert chosen["a"].tolist() == [1, 3]
    assert chosen["b"].tolist() == [5, 6, 7, 8, 9]


def test_min_keep_guard_holds_and_count_stays_exact():
    # block "a" holds all the lowest scores; the guard keeps 2 of them and takes the next lowest from "b"
    scores = {"a": torch.zeros(6), "b": torch.arange(1.0, 7.0)}
    chosen = select_lowest(scores, 0.5, min_keep=2)
    assert len(chosen["a"]) == 4 and chosen["b"].tolist() == [0, 1]
    assert sum(len(v) for v in chosen.values()) == 6
    assert len(select_lowest(scores, 0.5)["a"]) == 5  # default min_keep=1: never empties a block
    assert len(select_lowest(scores, 0.9, per_layer=True, min_keep=3)["a"]) == 3


@pytest.mark.parametrize("ratio,min_keep,needle", [(1.0, 1, "ratio"), (-0.1, 1, "ratio"), (0.9, 3, "min_keep"),
                                                   (0.5, 0, "min_keep")])
def test_bad_selection_settings(ratio, min_keep, needle):
    with pytest.raises(ConfigError, match=needle):
        select_lowest({"a": torch.rand(5), "b": torch.rand(5)}, ratio, min_keep=min_keep)
