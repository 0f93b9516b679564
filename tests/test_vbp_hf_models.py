"""HF ViT / DeiT / Swin / ConvNeXt (tiny configs) prune through the same role-found code path, exactly."""

import pytest
import torch

pytest.importorskip("transformers")

from edgeprune import models  # noqa: E402
from edgeprune.methods import vbp  # noqa: E402
from helpers import pruned_neurons_at_their_means

VIT = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, patch_size=4)
CONFIGS = {
    "hf-config:vit": VIT,
    "hf-config:deit": VIT,
    "hf-config:swin": dict(embed_dim=8, depths=[1, 1], num_heads=[2, 2], window_size=2, patch_size=2),
    "hf-config:convnext": dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, layer_scale_init_value=1.0),
}


@pytest.mark.parametrize("spec", list(CONFIGS))
def test_hf_model_prunes_exactly(spec, tmp_path):
    torch.manual_seed(0)
    model = models.create(spec, num_classes=5, in_channels=3, image_size=16, **CONFIGS[spec]).eval()
    batches = [(torch.randn(3, 3, 16, 16), torch.zeros(3, dtype=torch.long)) for _ in range(2)]
    pruned, stats = vbp.prune(model, batches, ratio=0.5)
    assert len(stats.blocks) == 2 and stats.pruned_neurons == round(0.5 * stats.total_neurons)
    for block in stats.blocks.values():
        mlp_in, mlp_out = pruned.get_submodule(block.mlp_in), pruned.get_submodule(block.mlp_out)
        assert mlp_in.out_features == mlp_out.in_features == block.kept >= 1

    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        with pruned_neurons_at_their_means(model, stats):
            expected = model(x)  # pruned + folded == the original with the pruned activations replaced by their means
        got = pruned(x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        assert (got - model(x)).abs().max() > 1e-6

    loaded = models.load(models.save(pruned, tmp_path / "pruned.pt"))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), got, rtol=0, atol=1e-6)
