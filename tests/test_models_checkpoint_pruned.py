"""Physically pruned models (fewer channels / hidden neurons) survive save -> load."""

import pytest
import torch

tp = pytest.importorskip("torch_pruning")

from edgeprune.models import create, load, save  # noqa: E402


def _assert_same(a, b, x):
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_resnet20_pruned_through_the_dependency_graph(tmp_path):
    torch.manual_seed(0)
    model = create("resnet20", num_classes=10).eval()
    example = torch.randn(1, 3, 32, 32)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    # the stem couples with every residual add of stage 1; a block-internal conv only with its BN + next conv
    for layer, idxs in ((model.conv1, [0, 3, 5]), (model.layer2[1].conv1, list(range(10))),
                        (model.layer3[0].conv1, [1, 2])):
        group = graph.get_pruning_group(layer, tp.prune_conv_out_channels, idxs=idxs)
        group.prune()
    assert model.conv1.out_channels == 13 and model.layer1[2].conv2.out_channels == 13
    assert model.layer2[1].conv1.out_channels == 22 and model.layer2[1].bn1.num_features == 22

    path = save(model, tmp_path / "pruned.pt")
    fresh = create("resnet20", num_classes=10)
    assert fresh.conv1.out_channels == 16  # the spec alone would rebuild the dense width
    again = load(path)
    assert again.layer1[0].conv1.in_channels == 13 and again.layer2[1].bn1.num_features == 22
    _assert_same(again, model, torch.randn(2, 3, 32, 32))


def test_vit_mlp_hidden_neurons_removed(tmp_path):
    torch.manual_seed(0)
    model = create("vit", num_classes=5, in_channels=1, image_size=8, dim=32, depth=2, num_heads=2).eval()
    for i, block in enumerate(model.blocks):
        drop = list(range(0, 128, 2 + i))
        tp.prune_linear_out_channels(block.mlp.fc1, idxs=drop)
        tp.prune_linear_in_channels(block.mlp.fc2, idxs=drop)
    widths = [b.mlp.hidden_features for b in model.blocks]
    assert widths == [64, 85]
    x = torch.randn(2, 1, 8, 8)
    model(x)  # the pruned model runs without any further surgery

    again = load(save(model, tmp_path / "vit.pt"))
    assert [b.mlp.fc2.in_features for b in again.blocks] == widths
    _assert_same(again, model, x)


def _hf_mlp(model):
    """First MLP (in, out) Linear pair of an HF ViT, across transformers' layer naming schemes."""
    modules = dict(model.named_modules())
    for name in modules:
        for a, b in (("intermediate.dense", "output.dense"), ("mlp.fc1", "mlp.fc2")):
            if name.endswith(a):
                return modules[name], modules[name[: -len(a)] + b]
    raise AssertionError("no MLP found")


def test_hf_vit_intermediate_pruned(tmp_path):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = create("hf-config:vit", num_classes=3, image_size=32, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=64, patch_size=8).eval()
    fc1, fc2 = _hf_mlp(model)
    drop = list(range(40))
    tp.prune_linear_out_channels(fc1, idxs=drop)
    tp.prune_linear_in_channels(fc2, idxs=drop)
    again = load(save(model, tmp_path / "hf.pt"))
    assert _hf_mlp(again)[0].out_features == 24
    _assert_same(again, model, torch.randn(2, 3, 32, 32))
