"""bounded_groups asks torch-pruning each node's width once per index-mapping update (its reshape mappings asked
1.3 million times per pruned copy of Swin-T), builds flatten mappings' index tuples faster and pauses the cycle
collector while it searches: torch-pruning's own mappings, and the same pruned model as without these."""

import contextlib

import pytest
import torch

from edgeprune.surgery import search
from edgeprune.surgery.lazy import tp
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.search import bounded_groups
from edgeprune.surgery.structure import plan as plan_structure

torchvision = pytest.importorskip("torchvision")
X = torch.randn(1, 3, 32, 32)


def _swin():
    torch.manual_seed(0)
    return torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                                              window_size=[4, 4], num_classes=10).eval()


def _mappings(graph) -> dict:
    return {(dep.source.name, dep.target.name, k): (type(m).__name__, sorted(vars(m).items()))
            for node in graph.module2node.values() for dep in node.dependencies
            for k, m in enumerate(dep.index_mapping) if m is not None}


def test_same_mappings_and_pruned_model_as_torch_pruning_with_each_width_asked_once(monkeypatch):
    plain = tp.DependencyGraph().build_dependency(_swin(), example_inputs=X, verbose=False)
    model = _swin()
    asked = []
    with bounded_groups(model, None, "test"):
        ours = tp.DependencyGraph().build_dependency(model, example_inputs=X, verbose=False)
        ask = tp.DependencyGraph.get_out_channels
        monkeypatch.setattr(tp.DependencyGraph, "get_out_channels", lambda g, n: asked.append(n) or ask(g, n))
        ours._edgeprune_widths = None  # (as after a pruning step)
        tp.dependency.index_mapping.update_index_mapping(ours)  # (our faster update, inside the context)
    reshapes = [k for k, (kind, _) in _mappings(plain).items() if kind == "_FlattenIndexMapping"]
    same = _mappings(ours) == _mappings(plain)
    assert reshapes and same
    n_asked, n_nodes = (len(asked), len(set(asked))), len(ours.module2node)
    assert 0 < n_asked[0] == n_asked[1] <= n_nodes, (n_asked, n_nodes)
    monkeypatch.undo()

    def pruned(fast: bool):
        if not fast:  # every speed-up of the search off: widths asked once, flatten mappings, the collector paused
            monkeypatch.setattr(search, "_widths_cached", lambda graph: contextlib.nullcontext())
            monkeypatch.setattr(search, "_collector_paused", lambda: contextlib.nullcontext())
            monkeypatch.setattr(search, "_flatten", tp.dependency.index_mapping._FlattenIndexMapping.__call__)
        model = _swin()
        mlps = {name: 0.5 for name, _ in model.named_modules() if name.endswith("mlp.0")}
        widths = prune_channels(model, X, plan_structure(model, X), mlps)
        assert all(widths[name] == _swin().get_submodule(name).out_features // 2 for name in mlps)
        return model

    model, reference = pruned(True), pruned(False)
    assert {n: p.shape for n, p in model.named_parameters()} == {n: p.shape for n, p in reference.named_parameters()}
    assert torch.allclose(model(X), reference(X), atol=1e-5)
