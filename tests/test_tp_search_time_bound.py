"""A dependency search over its CPU-time budget is refused in one line naming what stopped it."""

import time

import pytest
import torch

from edgeprune import models
from edgeprune.errors import ModelError
from edgeprune.surgery.graph import build_graph
from edgeprune.surgery.groups import coupled_groups
from edgeprune.surgery.search import bounded_groups


def test_search_past_its_budget_is_refused():
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    x = torch.zeros(1, 3, 8, 8)
    graph = build_graph(model, x)
    with pytest.raises(ModelError, match=r"^torch-pruning's dependency search on ResNet was stopped \(it ran past 0 s "
                                         r"of CPU time\); the test cannot prune this model$"):
        with bounded_groups(model, graph, "the test", seconds=0):
            coupled_groups(model, x, graph=graph)
    with bounded_groups(model, graph, "the test"):  # within the default budget
        assert len(coupled_groups(model, x, graph=graph)) > 5


def test_the_clock_starts_again_with_each_group():
    """The CPU-time bound is one group's search: listing many groups that together take longer than it is slow, not
    unbounded (timm's ResNeSt-26d was refused at 30 s for all its searches together)."""
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    x = torch.zeros(1, 3, 8, 8)
    graph = build_graph(model, x)
    started = time.process_time()
    with bounded_groups(model, graph, "the test"):
        groups = coupled_groups(model, x, graph=graph)
    whole = time.process_time() - started
    graph = build_graph(model, x)
    with bounded_groups(model, graph, "the test", seconds=0.7 * whole):  # no group's search takes half the listing
        for _ in range(2):  # together past the bound
            assert len(coupled_groups(model, x, graph=graph)) == len(groups)


def test_a_few_searches_past_the_bound_keep_their_layers_whole_more_refuse(monkeypatch):
    """iFormer-S has two groups whose search runs past 30 s: they are kept whole and the rest of the model pruned.
    Past SLOW_GROUPS of them (each costs the bound), the model is refused as before."""
    from edgeprune.surgery import groups as groups_lib
    from edgeprune.surgery.search import Unbounded

    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    x = torch.zeros(1, 3, 8, 8)
    graph = build_graph(model, x)
    with pytest.raises(ModelError, match="ran past 0 s of CPU time"):
        with bounded_groups(model, graph, "the test", seconds=0):
            coupled_groups(model, x, graph=graph, failing=(Unbounded,))
    monkeypatch.setattr(groups_lib, "SLOW_GROUPS", 1000)
    with bounded_groups(model, graph, "the test", seconds=0):
        groups = coupled_groups(model, x, graph=graph, failing=(Unbounded,))
    stopped = [g for g in groups if g.failed.startswith("Unbounded: it ran past 0 s")]
    twins = [g for g in groups if g.failed.startswith("as ")]  # same layer of a block of the same class: not searched
    assert len(stopped) > 3 and twins  # (more stops than the default SLOW_GROUPS)
    assert all(g.protected for g in stopped + twins)
    assert "layer1.1.conv1" in {m for g in twins for m in g.members}  # layer1.0.conv1's twin (NesT's attn.qkv x8)
