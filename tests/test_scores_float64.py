"""Every criterion works on a float64 model and returns float32 CPU scores of the weights' shapes."""

import pytest
import torch
from torch import nn

from edgeprune import scores


@pytest.mark.parametrize("criterion", sorted(scores.CRITERIA))
def test_criterion_on_float64_model(criterion):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4)).double()
    batches = [(torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 3])) for _ in range(2)]
    options = {"sparsity": 0.5, "rounds": 3} if criterion == "synflow" else {}
    got = scores.compute(criterion, model, batches, **options)
    assert {n: tuple(s.shape) for n, s in got.items()} == {"0.weight": (3, 1, 3, 3), "4.weight": (4, 12)}
    for s in got.values():
        assert s.dtype == torch.float32 and s.device.type == "cpu" and torch.isfinite(s).all()
    assert next(model.parameters()).dtype == torch.float64
