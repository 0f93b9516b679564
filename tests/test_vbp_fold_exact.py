"""Mean-shift folding is exact: pruned + folded == original with the pruned activations replaced by their means."""

import torch

from edgeprune import models
from edgeprune.methods import vbp
from helpers import pruned_neurons_at_their_means


def _model_and_batches(seed=0):
    torch.manual_seed(seed)
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=2, num_heads=2).eval()
    batches = [(torch.randn(6, 1, 8, 8), torch.zeros(6, dtype=torch.long)) for _ in range(3)]
    return model, batches


def test_constant_neurons_are_folded_exactly():
    model, batches = _model_and_batches()
    fc1 = model.blocks[0].mlp.fc1
    constant = torch.arange(0, 64, 2)  # half of block 0's neurons output a constant GELU(c)
    with torch.no_grad():
        fc1.weight[constant] = 0.0
        fc1.bias[constant] = torch.linspace(-2, 2, len(constant))
    pruned, stats = vbp.prune(model, batches, ratio=len(constant) / 128)
    block = stats.blocks["blocks.0.mlp.fc1"]
    assert torch.equal(block.pruned, constant)  # zero variance is ranked lowest, globally
    assert stats.blocks["blocks.1.mlp.fc1"].pruned.numel() == 0
    assert pruned.blocks[0].mlp.fc1.out_features == 32 and model.blocks[0].mlp.fc1.out_features == 64  # a copy
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-5)
        # without the fold the output changes: the test can fail
        unfolded, _ = vbp.prune(model, batches, ratio=len(constant) / 128, compensation=False)
        assert (unfolded(x) - model(x)).abs().max() > 1e-3


def test_pruned_model_equals_mean_replaced_model():
    model, batches = _model_and_batches(1)
    with torch.no_grad():
        model.blocks[1].mlp.fc2.bias = None  # the fold must create the bias
    pruned, stats = vbp.prune(model, batches, ratio=0.6)
    assert pruned.blocks[1].mlp.fc2.bias is not None

    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        with pruned_neurons_at_their_means(model, stats):
            expected = model(x)
        torch.testing.assert_close(pruned(x), expected, rtol=1e-5, atol=1e-5)
        assert (pruned(x) - model(x)).abs().max() > 1e-4  # pruning did change the function
