"""Reconvene on VGG-11: insensitive layers shrink by score mass, shapes chain, re-init vs untouched, sliced masks."""

import copy
import math

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.methods.reconvene import generate, pai_masks


@pytest.fixture(scope="module")
def generated():
    torch.manual_seed(0)
    model = models.create("vgg11", num_classes=10, in_channels=3, image_size=8)
    original = copy.deepcopy(model)
    x = torch.zeros(1, 3, 8, 8)
    pruned, masks, info = generate(model, x, 0.9, "magnitude")
    scores, upai = pai_masks(original, x, 0.9, "magnitude")
    return original, model, pruned, masks, info, scores, upai


def test_the_original_model_is_left_untouched(generated):
    original, model, *_ = generated
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), model.state_dict().values()))


def test_insensitive_layers_are_the_ones_pruned_harder_than_the_mean_and_keep_sqrt_density_times_channels(generated):
    original, _, pruned, _, info, scores, upai = generated
    rows = {r["layer"]: r for r in info["layers"]}
    sparsity = {layer: 1 - int(upai[f"{layer}.weight"].count_nonzero()) / upai[f"{layer}.weight"].numel() for layer in rows}
    average = sum(sparsity.values()) / len(sparsity)  # default PSE average: unweighted mean of the conv layers
    assert info["average_sparsity"] == pytest.approx(average)
    for layer, row in rows.items():
        s = sparsity[layer]
        assert row["sparsity"] == pytest.approx(s)
        assert row["insensitive"] == (s > average)
        assert row["structured"] == row["insensitive"]  # plain chain: every layer is its own group
        expected = max(1, round(math.sqrt(1 - s) * row["channels_before"])) if row["insensitive"] else row["channels_before"]
        assert row["channels_after"] == expected
    assert info["structured"] and len(info["structured"]) < len(rows)  # a real split, not all or nothing
    # the surviving channels have the largest score mass among the layer's filters
    for layer in info["structured"]:
        w = f"{layer}.weight"
        mass = torch.where(upai[w], scores[w], torch.zeros_like(scores[w])).flatten(1).sum(1)
        gone = info["removed"][layer]["out"]
        kept = [c for c in range(mass.numel()) if c not in set(gone)]
        assert len(kept) == rows[layer]["channels_after"]
        assert mass[kept].min() >= mass[gone].max()


def test_shapes_chain_and_the_model_runs(generated):
    _, _, pruned, *_ = generated
    convs = [m for m in pruned.features if isinstance(m, nn.Conv2d)]
    bns = [m for m in pruned.features if isinstance(m, nn.BatchNorm2d)]
    for prev, nxt in zip(convs, convs[1:]):
        assert nxt.in_channels == prev.out_channels == nxt.weight.shape[1]
    assert all(bn.num_features == c.out_channels for bn, c in zip(bns, convs))
    assert pruned.classifier[1].in_features == convs[-1].out_channels
    assert pruned(torch.randn(4, 3, 8, 8)).shape == (4, 10)


def test_reinitialised_layers_differ_and_untouched_layers_keep_their_masked_initial_weights(generated):
    original, _, pruned, masks, info, _, upai = generated
    orig, new = dict(original.named_parameters()), dict(pruned.named_parameters())
    reinit = set(info["reinitialised"])
    assert set(info["structured"]) <= reinit and "classifier.1" in reinit  # consumer of the last conv
    for layer in info["structured"]:
        w = f"{layer}.weight"
        removed = info["removed"][layer]
        rows = [c for c in range(orig[w].shape[0]) if c not in set(removed["out"])]
        cols = [c for c in range(orig[w].shape[1]) if c not in set(removed["in"])]
        assert not torch.equal(new[w], orig[w][rows][:, cols])
        assert w not in masks and int(new[w].count_nonzero()) == new[w].numel()  # now small and dense
    untouched = [n for n in orig if n.rsplit(".", 1)[0] not in reinit]
    assert "features.0.weight" in untouched and "features.1.weight" in untouched
    for name in untouched:
        expected = orig[name] * upai[name] if name in upai else orig[name]
        assert torch.equal(new[name], expected), name


def test_sensitive_masks_are_exact_and_sliced_with_the_removed_inputs(generated):
    _, _, pruned, masks, info, _, upai = generated
    params = dict(pruned.named_parameters())
    cut = info["removed"]["classifier.1"]["in"]
    assert cut and info["removed"]["classifier.1"]["out"] == []
    kept_cols = [c for c in range(512) if c not in set(cut)]
    assert torch.equal(masks["classifier.1.weight"], upai["classifier.1.weight"][:, kept_cols])
    for name, mask in masks.items():
        assert mask.shape == params[name].shape
        assert torch.all(params[name][~mask] == 0), name
    assert torch.equal(masks["classifier.3.weight"], upai["classifier.3.weight"])
