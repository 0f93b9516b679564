"""bounded_groups' faster index mappings give torch-pruning's own result on a concat-heavy DenseNet."""


import pytest
import torch

from edgeprune.surgery.lazy import tp
from edgeprune.surgery.search import bounded_groups

torchvision = pytest.importorskip("torchvision")


def _densenet():
    torch.manual_seed(0)
    return torchvision.models.DenseNet(growth_rate=4, block_config=(5, 5), num_init_features=8, num_classes=10).eval()


def _concat_mappings(graph) -> dict:
    found = {}
    for node in graph.module2node.values():
        for dep in node.dependencies:
            mapping = dep.index_mapping[1]
            if isinstance(mapping, tp.dependency.index_mapping._ConcatIndexMapping):
                found[(dep.source.name, dep.target.name)] = (tuple(mapping.offset), mapping.reverse)
    return found


def _prune(model, x):
    pruner = tp.pruner.BasePruner(model, x, importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=0.3,
                                  ignored_layers=[model.classifier])
    pruner.step()
    return model


def test_same_concat_mappings_and_same_pruned_model_as_torch_pruning():
    x = torch.randn(1, 3, 32, 32)
    plain = tp.DependencyGraph().build_dependency(_densenet(), example_inputs=x, verbose=False)
    with bounded_groups(_densenet(), None, "test"):
        ours = tp.DependencyGraph().build_dependency(_densenet(), example_inputs=x, verbose=False)
    assert len(_concat_mappings(plain)) > 20 and _concat_mappings(ours) == _concat_mappings(plain)

    reference = _prune(_densenet(), x)
    model = _densenet()
    with bounded_groups(model, None, "test"):
        _prune(model, x)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert shapes == {n: p.shape for n, p in reference.named_parameters()}
    assert shapes != {n: p.shape for n, p in _densenet().named_parameters()}  # something was removed
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters()))
    assert torch.allclose(model(x), reference(x), atol=1e-6)
    # the original mapping functions are back after the context
    assert tp.dependency.index_mapping.update_concat_index_mapping.__module__ == "torch_pruning.dependency.index_mapping"
