import pytest
import torch

from edgeprune import data, models
from edgeprune.measure import prunable_weights
from edgeprune.train import TrainConfig, fit


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_pruned_weights_stay_exactly_zero_through_training(optimizer):
    splits = data.load("digits", seed=0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    g = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(w.shape, generator=g) > 0.7 for n, w in prunable_weights(model).items()}
    kept = {n: int(m.sum()) for n, m in masks.items()}
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.01, optimizer=optimizer, max_batches=10)
    fit(model, splits.train, splits.val, cfg, masks=masks, progress=False)
    for name, w in prunable_weights(model).items():
        assert torch.all(w[~masks[name]] == 0), name
        assert int(torch.count_nonzero(w)) == kept[name], name
