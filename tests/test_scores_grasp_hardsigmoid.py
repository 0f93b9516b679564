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


class CosineAttention(nn.Module):
    """Swin-V2's cosine similarity over tokens of which some are zero (the zero-padded part of a window)."""

    def __init__(self):
        super().__init__()
        self.q, self.k = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
        self.head = nn.Linear(6, 4)

    def forward(self, x):  # x: [batch, 1, 8, 8] -> 6 tokens of 4 features, the last 2 zero
        tokens = torch.cat([x.flatten(1)[:, :16].view(-1, 4, 4), torch.zeros(x.shape[0], 2, 4)], 1)
        sim = F.normalize(self.q(tokens), dim=-1) @ F.normalize(self.k(tokens), dim=-1).transpose(1, 2)
        return self.head(sim.mean(1))


def test_grasp_is_finite_through_normalize_of_zero_vectors():
    x = torch.zeros(2, 3, requires_grad=True)
    (g,) = torch.autograd.grad(F.normalize(x * 2 + torch.tensor([[1.0, 0, 0], [0, 0, 0]]), dim=1).pow(2).sum(), x,
                               create_graph=True)
    assert torch.isnan(torch.autograd.grad(g.sum(), x)[0]).any()  # the reason for the replacement
    torch.manual_seed(0)
    result = scores.compute("grasp", CosineAttention(), _batches())
    assert all(torch.isfinite(s).all() for s in result.values())
    assert result["q.weight"].abs().sum() > 0


def test_nan_scores_are_a_one_line_model_error(monkeypatch):
    import dataclasses

    from edgeprune.errors import ModelError
    from edgeprune.scores.registry import REGISTRY

    entry = REGISTRY["magnitude"]
    monkeypatch.setitem(REGISTRY, "magnitude", dataclasses.replace(entry, fn=lambda model, batches, **_: {
        n: torch.full_like(w, float("nan")) for n, w in model.named_parameters() if w.ndim >= 2}))
    with pytest.raises(ModelError, match=r"criterion 'magnitude' gives NaN scores for 0.weight on this model"):
        scores.compute("magnitude", _net(explicit=True))
