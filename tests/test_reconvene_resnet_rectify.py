"""Reconvene on ResNet-20 (SynFlow, few rounds): residual groups shrink together, adds line up, masks sliced."""

import copy
import math

import pytest
import torch

from edgeprune import models
from edgeprune.methods.reconvene import generate, pai_masks
from edgeprune.surgery.groups import coupled_groups

X = torch.zeros(1, 3, 8, 8)
OPTIONS = {"rounds": 3}


@pytest.fixture(scope="module")
def generated():
    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    original = copy.deepcopy(model)
    pruned, masks, info = generate(model, X, 0.9, "synflow", score_options=OPTIONS)
    _, upai = pai_masks(original, X, 0.9, "synflow", score_options=OPTIONS)
    return original, pruned, masks, info, upai


def test_residual_groups_are_decided_and_pruned_as_one(generated):
    original, pruned, _, info, _ = generated
    rows = {r["layer"]: r for r in info["layers"]}
    stream_groups = [g for g in info["groups"] if len(g["members"]) > 1]
    assert len(stream_groups) == 3
    assert any(g["structured"] for g in stream_groups), "expected the last stage's stream to shrink at p=0.9"
    for g in info["groups"]:
        afters = {rows[m]["channels_after"] for m in g["members"]}
        assert afters == {g["channels_after"]}, g["members"]
        if g["structured"]:
            assert g["channels_after"] == max(1, round(math.sqrt(1 - g["sparsity"]) * g["channels_before"]))  # default width rule
            assert g["sparsity"] > info["average_sparsity"]
        else:
            assert g["channels_after"] == g["channels_before"]
    # pooled verdict: the group's sparsity is the members' weights together
    for g in stream_groups:
        n = [rows[m]["weights_before"] for m in g["members"]]
        s = [rows[m]["sparsity"] for m in g["members"]]
        assert g["sparsity"] == pytest.approx(sum(a * b for a, b in zip(n, s)) / sum(n))


def test_the_rectified_resnet_runs_and_its_residual_adds_line_up(generated):
    _, pruned, *_ = generated
    for g in coupled_groups(pruned, X):
        mods = dict(pruned.named_modules())
        widths = {mods[m].weight.shape[0] for m in g.members}
        assert len(widths) == 1, g.members
        for c in g.consumers:
            assert mods[c].weight.shape[1] == g.channels, c
    seen = []
    for stage in (pruned.layer1, pruned.layer2, pruned.layer3):
        for block in stage:
            block.register_forward_hook(lambda m, i, o: seen.append(
                (m.bn2.num_features, (m.downsample[1].num_features if m.downsample is not None else i[0].shape[1]))))
    assert pruned(torch.randn(3, 3, 8, 8)).shape == (3, 10)
    assert len(seen) == 9 and all(a == b for a, b in seen)


def test_masks_of_sensitive_layers_are_exact_and_sliced(generated):
    original, pruned, masks, info, upai = generated
    params = dict(pruned.named_parameters())
    structured = set(info["structured"])
    for name, mask in masks.items():
        layer = name.rsplit(".", 1)[0]
        assert layer not in structured
        assert torch.all(params[name][~mask] == 0)
        cut = info["removed"].get(layer, {"in": [], "out": []})
        assert cut["out"] == []
        cols = [c for c in range(upai[name].shape[1]) if c not in set(cut["in"])]
        assert torch.equal(mask, upai[name][:, cols]), name
    # the classifier reads the last stream: its mask lost exactly the removed columns
    if "layer3.2.conv2" in structured:
        assert masks["fc.weight"].shape[1] == params["layer3.2.conv2.weight"].shape[0] < 64
