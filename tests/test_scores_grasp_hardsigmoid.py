"""GraSP needs a double backward; hardsigmoid (MobileNetV3's squeeze-excite gate) has none in PyTorch.

Scoring runs it as the same function composed of ops that have one, so GraSP works on such models and gives
the scores it gives for the explicit composition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import scores


class Gate(nn.Module):
    def __init__(self, explicit: bool):
        super().__init__()
        self.explicit = explicit

    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0 if self.explicit else F.hardsigmoid(x)


def _net(explicit: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.Hardswish(), nn.Conv2d(8, 8, 1),
                         nn.Hardsigmoid() if not explicit else Gate(True), nn.Conv2d(8, 8, 1), Gate(explicit),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def _batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 1, 8, 8, generator=g) * 3, torch.randint(0, 4, (6,), generator=g))]


def test_plain_double_backward_of_hardsigmoid_is_missing_in_torch():
    # the reason for the replacement; if torch adds the derivative, the replacement can go
    x = torch.randn(5, requires_grad=True)
    (g,) = torch.autograd.grad(F.hardsigmoid(x * 2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="hardsigmoid_backward"):
        torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("criterion", ["grasp", "grasp_abs"])
def test_grasp_on_hardsigmoid_equals_the_explicit_composition(criterion):
    got = scores.compute(criterion, _net(explicit=False), _batches())
    want = scores.compute(criterion, _net(explicit=True), _batches())
    assert got.keys() == want.keys()
    for name in got:
        assert torch.allclose(got[name], want[name], rtol=1e-5, atol=1e-8), name
    assert any(bool(s.abs().sum() > 0) for s in got.values())


def test_grasp_leaves_hardsigmoid_alone_outside_scoring():
    model = _net(explicit=False)
    scores.compute("grasp", model, _batches())
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)  # the real op again: no double backward
    with pytest.raises(RuntimeError, match="hardsigmoid_backward"):
        torch.autograd.grad(g.sum(), x)


@pytest.mark.parametrize("spec", ["torchvision:mobilenet_v3_small", "timm:mobilenetv3_small_050"])
def test_grasp_scores_mobilenet_v3(spec):
    pytest.importorskip("torchvision" if spec.startswith("torchvision") else "timm")
    from edgeprune import models

    model = models.create(spec, num_classes=10, in_channels=3, image_size=32)
    g = torch.Generator().manual_seed(0)
    result = scores.compute("grasp", model, [(torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g))])
    assert result and all(torch.isfinite(s).all() for s in result.values())
