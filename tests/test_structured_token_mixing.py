"""Layers that mix tokens (``proj(x.transpose(1, 2)).transpose(1, 2)``: MLP-Mixer's token MLP, gMLP's spatial gate).
torch-pruning takes the transposes for elementwise operations and couples the token layer's features (the tokens)
with the channels around it: Mixer's residual stream was kept whole and gMLP was refused ("nothing is left to prune
once LayerNorm, SpatialGatingUnit x30 kept whole")."""

import copy

import pytest
import torch

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

mlp_mixer = pytest.importorskip("timm.models.mlp_mixer")
layers = pytest.importorskip("timm.layers")

DIM, TOKENS, X = 32, 16, torch.randn(2, 1, 32, 32)


def mixer(gated: bool = False):
    torch.manual_seed(0)
    kinds = {"block_layer": mlp_mixer.SpatialGatingBlock, "mlp_layer": layers.GatedMlp} if gated else {}
    return mlp_mixer.MlpMixer(num_classes=10, img_size=32, in_chans=1, patch_size=8, num_blocks=2, embed_dim=DIM,
                              mlp_ratio=6 if gated else 2, **kinds).eval()


def test_mixer_residual_stream_is_pruned_around_its_token_mlps():
    model = mixer()
    structure = plan_structure(model, X)
    stream = next(g for g in structure.groups if "stem.proj" in g)
    assert not any("mlp_tokens" in m for m in stream)
    assert {"blocks.0.mlp_tokens.fc2", "blocks.1.mlp_tokens.fc2"} <= structure.protected  # they write the tokens
    assert "blocks.0.mlp_tokens.fc1" not in structure.protected  # the token MLP's hidden units can go
    pruned = copy.deepcopy(model)
    widths = prune_channels(pruned, X, structure, {"stem.proj": 0.5, "blocks.0.mlp_tokens.fc1": 0.5})
    assert not widths.skipped
    assert widths["stem.proj"] == DIM // 2 and widths["blocks.0.mlp_tokens.fc2"] == TOKENS
    assert pruned.blocks[0].mlp_tokens.fc1.out_features == model.blocks[0].mlp_tokens.fc1.out_features // 2
    assert pruned(X).shape == (2, 10)


def test_gmlp_spatial_gate_loses_channels_in_pairs():
    model = mixer(gated=True)
    hidden = model.blocks[0].mlp_channels.fc1.out_features
    structure = plan_structure(model, X)
    assert structure.channel_groups.get("blocks.0.mlp_channels.fc1") == 2
    assert "blocks.0.mlp_channels.gate.proj" in structure.protected
    pruned = copy.deepcopy(model)
    widths = prune_channels(pruned, X, structure, {"blocks.0.mlp_channels.fc1": 0.5})
    assert not widths.skipped
    removed = set(widths.removed["blocks.0.mlp_channels.fc1"]["out"])
    assert len(removed) == hidden // 2 and {j + hidden // 2 for j in removed if j < hidden // 2} <= removed
    mlp = pruned.blocks[0].mlp_channels
    assert (mlp.gate.norm.normalized_shape[0], mlp.fc2.in_features, mlp.gate.proj.in_features) == (
        hidden // 4, hidden // 4, TOKENS)
    assert pruned(X).shape == (2, 10)


def test_the_default_structured_call_prunes_gmlp():
    model = mixer(gated=True)
    pruned = edgeprune.prune(model, tiny_data(X[:1], 10), method="structured", finetune=0).model
    mlp = pruned.blocks[0].mlp_channels
    assert mlp.fc2.in_features < model.blocks[0].mlp_channels.fc2.in_features
    assert mlp.fc1.out_features == 2 * mlp.fc2.in_features and mlp.gate.proj.in_features == TOKENS
    assert pruned(X).shape == (2, 10)
