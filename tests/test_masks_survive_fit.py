"""Masks built from scores stay exact through edgeprune.train.fit (a short fine-tune on digits)."""

import math

import torch

from edgeprune import data, models, scores
from edgeprune.measure import prunable_weights, sparsity
from edgeprune.prune.masks import layerwise_masks, masks_from_model, per_layer_sparsity
from edgeprune.train import TrainConfig, fit


def test_product_masks_survive_a_short_fit_exactly():
    splits = data.load("digits", seed=0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    batches = scores.calibration_batches(splits.train, 3, batch_size=32, seed=0)
    s = scores.compute("product", model, batches)
    targets = {name: 0.5 + 0.2 * i for i, name in enumerate(s)}
    masks = layerwise_masks(s, targets)
    fit(model, splits.train, splits.val, TrainConfig(epochs=2, batch_size=64, lr=0.01, optimizer="adamw",
                                                     max_batches=8), masks=masks, progress=False)
    weights = prunable_weights(model)
    for name, mask in masks.items():
        assert torch.all(weights[name][~mask] == 0), name
        assert int(torch.count_nonzero(weights[name])) == int(mask.sum()), name
        assert per_layer_sparsity(masks)[name] == math.floor(targets[name] * mask.numel()) / mask.numel()
    assert all(torch.equal(a, masks[n]) for n, a in masks_from_model(model).items())
    assert abs(sparsity(model) - sum(int((~m).sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())) < 1e-12
