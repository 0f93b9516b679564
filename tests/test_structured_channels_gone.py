"""surgery.ratios on a plain CNN, a residual net, depthwise and grouped convs and a ViT: channels leave
the model for real (fewer parameters), outputs keep their shape, coupled layers keep matching widths."""

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.measure import param_count
from edgeprune.models._shapes import structure
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(32, 24), nn.Linear(24, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.b1(self.c1(x)))))
        return self.fc2(torch.relu(self.fc1(x.mean((2, 3)))))


class Depthwise(nn.Module):
    """conv -> depthwise conv -> pointwise conv -> grouped conv (4 groups) -> classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.grouped = nn.Conv2d(32, 32, 3, padding=1, groups=4)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.pw(torch.relu(self.dw(torch.relu(self.stem(x))))))
        return self.fc(torch.relu(self.grouped(x)).mean((2, 3)))


def everything(structure, fraction):
    return {n: fraction for g in structure.groups for n in g} | {q: fraction for q in structure.heads}


def pruned(model, x, fraction=0.5, keep=frozenset()):
    torch.manual_seed(0)
    structure = plan_structure(model, x, keep)
    before, out_before = param_count(model), model.eval()(x).shape
    widths = prune_channels(model, x, structure, everything(structure, fraction))
    assert param_count(model) < 0.6 * before
    assert model(x).shape == out_before
    return widths


def test_tiny_cnn_loses_half_its_channels_but_never_the_classifier_outputs():
    model = TinyCNN()
    widths = pruned(model, torch.randn(2, 1, 8, 8))
    assert (widths["c1"], widths["c2"], widths["fc1"], widths["fc2"]) == (8, 16, 12, 10)
    assert model.b1.num_features == 8 and model.c2.in_channels == 8 and model.fc1.in_features == 16


def test_residual_streams_shrink_as_one_group():
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8)
    widths = pruned(model, torch.randn(2, 1, 8, 8))
    stage2 = ["layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2", "layer2.2.conv2"]
    assert {widths[n] for n in stage2} == {16}
    assert model.layer2[1].conv1.in_channels == 16 and model.layer3[0].downsample[0].in_channels == 16
    assert model.fc.out_features == 10


def test_depthwise_follows_its_producer_and_grouped_conv_keeps_its_groups():
    model = Depthwise()
    pruned(model, torch.randn(2, 1, 8, 8))
    assert model.dw.in_channels == model.dw.out_channels == model.dw.groups == model.stem.out_channels == 8
    assert model.grouped.groups == 4 and model.grouped.out_channels % 4 == 0
    assert model.grouped.in_channels == model.pw.out_channels and model.fc.in_features == model.grouped.out_channels


def test_vit_loses_heads_and_mlp_neurons_but_keeps_its_embedding():
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=32, depth=2, num_heads=4)
    pruned(model, torch.randn(2, 1, 8, 8), keep=frozenset({"patch_embed.proj"}))
    for block in model.blocks:
        assert block.attn.num_heads == 2 and block.attn.qkv.out_features == 3 * 2 * 8
        assert block.attn.proj.in_features == 16 and block.attn.proj.out_features == 32
        assert block.mlp.fc1.out_features == 64 and block.mlp.fc2.in_features == 64
    assert model.patch_embed.proj.out_channels == 32 and model.head.out_features == 10


def test_scores_decide_which_channels_go():
    model = TinyCNN()
    x = torch.randn(2, 1, 8, 8)
    structure = plan_structure(model, x)
    keep = [3, 5, 7, 9, 11, 13, 15, 1]
    score = torch.zeros_like(model.c1.weight)
    score[keep] = 1.0
    original = model.c1.weight.detach().clone()
    prune_channels(model, x, structure, {"c1": 0.5}, {"c1.weight": score})
    assert torch.equal(model.c1.weight, original[sorted(keep)])


def test_round_to_and_bad_fractions():
    model = TinyCNN()
    x = torch.randn(2, 1, 8, 8)
    structure = plan_structure(model, x)
    widths = prune_channels(model, x, structure, {"c2": 0.3}, round_to=8)
    assert widths["c2"] == 16
    with pytest.raises(Exception, match="c1"):
        prune_channels(model, x, structure, {"c1": 1.0})


def test_timm_vit_loses_heads_and_its_recorded_structure_says_so():
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=16, patch_size=8, num_classes=10,
                              depth=1)
    pruned(model, torch.randn(2, 3, 16, 16), keep=frozenset({"patch_embed.proj"}))
    attn = model.blocks[0].attn
    assert attn.num_heads == 1 and attn.qkv.out_features == 3 * 64
    recorded = structure(model)["blocks.0.attn"]
    assert recorded["num_heads"] == 1 and recorded.get("attn_dim", 64) == 64


def test_magnitude_keeps_the_channels_batch_norm_scales_up():
    # a convolution followed by batch norm is scale-free: gamma sets the channel's output scale, and torch-pruning's
    # group L2 counts it. Here the filters of the channels with gamma 0.01 are the larger ones.
    torch.manual_seed(0)
    model, x = TinyCNN().eval(), torch.randn(2, 1, 8, 8)
    big = torch.zeros(16, dtype=torch.bool)
    big[torch.randperm(16)[:8]] = True
    with torch.no_grad():
        filters = torch.randn(16, 9)
        filters /= filters.norm(dim=1, keepdim=True)
        model.c1.weight.copy_((filters * torch.where(big, 1.0, 1.05)[:, None]).view(16, 1, 3, 3))
        slices = torch.randn(16, 32 * 9)
        model.c2.weight.copy_((slices / slices.norm(dim=1, keepdim=True)).view(16, 32, 3, 3).transpose(0, 1))
        model.b1.weight.copy_(torch.where(big, 1.0, 0.01))
    structure = plan_structure(model, x, frozenset())
    group = next(g for g in structure.groups if "c1" in g)
    prune_channels(model, x, structure, dict.fromkeys(group, 0.5))
    assert model.c1.out_channels == 8
    assert torch.equal(model.b1.weight, torch.ones(8))
