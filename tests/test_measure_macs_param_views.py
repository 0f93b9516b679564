"""MACs of a model that passes a view of a parameter to a submodule (CaiT's class-attention blocks take
``cls_token.expand(...)``): torch's FlopCounterMode hooks the gradients of module inputs, and under no_grad such
a view requires grad but has no grad_fn. Found by the public-API contract: every method failed on timm's CaiT."""

import pytest
import torch
from torch import nn

from edgeprune.measure import macs


class ClassToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.block = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block(self.cls_token.expand(x.shape[0], -1, -1))[:, 0] + x)


def test_macs_of_a_parameter_view_passed_to_a_module():
    model = ClassToken()
    report = macs(model, torch.zeros(1, 8))
    assert report.dense == 8 * 8 + 8 * 3
    assert all(p.requires_grad for p in model.parameters())  # left as they were


def test_macs_of_timm_cait():
    timm = pytest.importorskip("timm")
    model = timm.create_model("cait_xxs24_224", img_size=32, patch_size=8, depth=1, num_classes=5)
    assert macs(model, torch.zeros(1, 3, 32, 32)).dense > 0
