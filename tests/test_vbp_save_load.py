"""After removal: layer shapes shrink as chosen, the model runs, and it saves/loads with edgeprune.models."""

import torch

from edgeprune import models
from edgeprune.methods import vbp


def test_pruned_vit_shapes_run_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=3, num_heads=2)
    batches = [(torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    pruned, stats = vbp.prune(model, batches, ratio=0.4)
    assert stats.pruned_neurons == round(0.4 * 3 * 64) == stats.total_neurons - sum(b.kept for b in stats.blocks.values())
    for i, block in enumerate(pruned.blocks):
        kept = stats.blocks[f"blocks.{i}.mlp.fc1"].kept
        assert block.mlp.fc1.weight.shape == (kept, 16) and block.mlp.fc1.bias.shape == (kept,)
        assert block.mlp.fc1.out_features == kept == block.mlp.fc2.in_features
        assert block.mlp.fc2.weight.shape == (16, kept) and block.mlp.fc2.bias.shape == (16,)
        assert block.attn.qkv.weight.shape == model.blocks[i].attn.qkv.weight.shape  # attention untouched
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        logits = pruned.eval()(x)
    assert logits.shape == (3, 10)

    path = models.save(pruned, tmp_path / "pruned.pt", meta={"ratio": 0.4})
    loaded = models.load(path)
    assert [b.mlp.fc1.out_features for b in loaded.blocks] == [b.mlp.fc1.out_features for b in pruned.blocks]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), logits, rtol=0, atol=0)
