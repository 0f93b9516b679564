"""timm's anti-aliasing ``BlurPool2d`` blurs each channel with a filter held as a buffer
(``F.conv2d(x, self.filt, groups=self.channels)``). torch-pruning cut the channels before it and not the filter, so
every pruned copy failed in its forward: the default structured call refused timm's TResNet-L ("the largest reachable
sparsity is 0.0303") and ResNet-blur-18."""

import copy

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

layers = pytest.importorskip("timm.layers")

X = torch.randn(2, 3, 16, 16)


class Blurred(nn.Module):
    """A conv, an anti-aliased downsampling of its output (with or without a channel count), a conv after it."""

    def __init__(self, channels: int | None = 16):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.aa = layers.BlurPool2d(channels, filt_size=3, stride=2)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.aa(self.stem(x).relu())).mean((2, 3))


@pytest.mark.parametrize("channels", [16, None])
def test_the_blur_filter_loses_the_channels_of_the_layer_before(channels):
    torch.manual_seed(0)
    model = Blurred(channels).eval()
    pruned = copy.deepcopy(model)
    widths = prune_channels(pruned, X, plan_structure(model, X), {"stem": 0.5})
    assert widths["stem"] == 8 and not widths.skipped, widths.skipped
    assert pruned.aa.channels == (8 if channels else None)
    assert pruned.aa.filt.shape[0] == (8 if channels else 1)
    kept = [int(torch.cdist(row.flatten()[None], model.stem.weight.flatten(1)).argmin())
            for row in pruned.stem.weight.detach()]  # the blur is linear per channel: the kept ones' outputs agree
    stem = nn.Conv2d(3, 8, 3, padding=1)
    stem.weight.data, stem.bias.data = model.stem.weight[kept], model.stem.bias[kept]
    assert torch.allclose(pruned.aa(stem(X).relu()), model.aa(model.stem(X).relu())[:, kept], atol=1e-6)


@pytest.mark.slow
def test_the_default_structured_call_prunes_resnet_blur():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnetblur18", num_classes=10)
    data = tiny_data(torch.zeros(1, 3, 32, 32), 10)
    pruned = edgeprune.prune(model, data, method="structured", finetune=0, deploy_metrics=False)
    assert pruned.record["status"] == "ok"
    assert pruned.record["params"] < 0.4 * pruned.dense["params"]
    assert pruned.model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
