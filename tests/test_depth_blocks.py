"""Which blocks depth pruning may remove: residual blocks with an identity shortcut, in sequential containers,
innermost first; plain shape-preserving layers and downsampling blocks stay. Block influence ranks a block that
adds nothing first."""

import pytest
import torch
import torchvision
from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.models import create
from edgeprune.scores.blocks import block_influence
from edgeprune.surgery.depth import drop_blocks, removable_blocks


def test_resnet20_identity_blocks_only():
    model = create("resnet20", in_channels=1)
    x = torch.randn(2, 1, 32, 32)
    # the first block of stages 2 and 3 downsamples: its output has another shape
    assert removable_blocks(model, x) == ["layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer2.2", "layer3.1",
                                          "layer3.2"]


def test_plain_layers_and_non_residual_blocks_stay():
    model = torchvision.models.mobilenet_v2(num_classes=10)
    found = removable_blocks(model, torch.randn(1, 3, 64, 64))
    residual = [f"features.{i}" for i, m in enumerate(model.features)
                if isinstance(m, torchvision.models.mobilenetv2.InvertedResidual) and m.use_res_connect]
    assert found == residual  # not the depthwise conv blocks inside them, which are shape-preserving too
    assert removable_blocks(create("vgg16", in_channels=1), torch.randn(1, 1, 32, 32)) == []


def test_innermost_blocks_of_a_stage_without_downsampling():
    class Stage(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(Residual(), Residual())

        def forward(self, x):
            return self.blocks(x)

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Sequential(Stage()), nn.Flatten(), nn.LazyLinear(3))
    model(torch.randn(1, 1, 6, 6))
    assert removable_blocks(model, torch.randn(1, 1, 6, 6)) == ["1.0.blocks.0", "1.0.blocks.1"]


class Residual(nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


def test_a_block_that_adds_nothing_is_least_influential_and_goes_cleanly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Residual(), Residual(), nn.Flatten(), nn.Linear(4 * 36, 3))
    with torch.no_grad():
        model[2].conv.weight.mul_(1e-3)
        model[2].conv.bias.zero_()
    x = torch.randn(8, 1, 6, 6)
    names = removable_blocks(model, x)
    assert names == ["1", "2"]
    influence = block_influence(model, names, [(x, None)])
    assert influence["2"] < influence["1"]
    before = model(x)
    drop_blocks(model, ["2"])
    assert isinstance(model[2], nn.Identity)
    torch.testing.assert_close(model(x), before, atol=1e-2, rtol=0)
    with pytest.raises(ConfigError, match="'9' is not a module"):
        drop_blocks(model, ["9"])


def test_blocks_of_a_model_passed_in_train_mode_are_found_through_the_public_api():
    # a fresh torchvision model is in train mode; at 8 px its last blocks see a 1x1 map, where batch norm in train
    # mode refuses a single example: the residual probe once crashed edgeprune.prune(..., drop_blocks=[0, 2]) here
    import edgeprune
    from edgeprune import data as data_lib

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=10)
    model.features[0][0] = nn.Conv2d(1, 32, 3, 2, 1, bias=False)
    pruned = edgeprune.prune(model, data_lib.load("digits"), method="mix_and_match", granularity="channel",
                             budget="macs<=60%", finetune=0, criteria=["magnitude"], strategies=["balanced"],
                             deploy_metrics=False, drop_blocks=[0, 2])
    assert model.training
    dropped = [r["decided"]["dropped_blocks"] for r in pruned.candidates if r["decided"]["dropped_blocks"]]
    assert dropped and all(len(d) == 2 and all(n.startswith("features.") for n in d) for d in dropped)
