"""Every criterion runs on a Vision Transformer (scaled_dot_product_attention; GraSP needs its double backward)."""

import pytest
import torch

from edgeprune import models, scores
from edgeprune.measure import prunable_weights


@pytest.mark.parametrize("criterion", sorted(scores.CRITERIA))
def test_criterion_on_zoo_vit(criterion):
    torch.manual_seed(0)
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=2, num_heads=2)
    batches = [(torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))]
    options = {"sparsity": 0.5, "rounds": 2} if criterion == "synflow" else {}
    got = scores.compute(criterion, model, batches, **options)
    weights = prunable_weights(model)
    assert list(got) == list(weights)
    assert all(got[n].shape == w.shape and torch.isfinite(got[n]).all() for n, w in weights.items())
    if criterion in ("gradient", "snip", "grasp_abs"):
        assert all(bool((got[n] > 0).any()) for n in weights), "every layer gets a signal"
