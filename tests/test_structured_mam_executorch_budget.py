"""A latency budget measured in ExecuTorch: the calibrated structured candidate fits it there."""

import pytest
import torch
from torch import nn

import edgeprune

pytest.importorskip("executorch")
pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_latency_budget_in_executorch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(64, 10))
    x = torch.randn(64, 1, 16, 16)
    y = torch.randint(0, 10, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    pruned = edgeprune.prune(model, (loader, loader), method="mix_and_match", budget="latency<=60%@executorch",
                             finetune=0, granularity="channel", criteria=["magnitude"], strategies=["balanced"],
                             deploy_metrics=False, latency_runs=10)
    decided = pruned.record["decided"]
    assert decided["budget"] == "latency<=60%@executorch"
    # the limit is 60 % of the input model's ExecuTorch latency, and the calibrated model measured within it
    assert 0 < decided["measured"] <= decided["limit"]
    assert sum(p.numel() for p in pruned.model.parameters()) < sum(p.numel() for p in model.parameters())
