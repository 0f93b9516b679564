"""A parity check on outputs near zero compares nothing: timm and torchvision initialise some heads to zero, and
a random signal fades to 1e-8 through a deep untrained EfficientNet. The contract's ``informative`` makes such a
model's outputs large enough to compare, and leaves every other model as it was."""

import torch
from torch import nn

from edgeprune.runs.contract import TINY_OUTPUT, informative


def _net(zero_head: bool, fading: bool) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, affine=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4, bias=False)).eval()
    if zero_head:
        nn.init.zeros_(model[-1].weight)
    if fading:  # running statistics far from what the layer produces: every activation scaled by 1e-5
        model[1].running_var.fill_(1e10)
    return model


def _scale(model):
    with torch.no_grad():
        return float(model(torch.randn(2, 3, 8, 8)).abs().max())


def test_a_zero_initialised_head_is_drawn_at_random():
    model = _net(zero_head=True, fading=False)
    assert _scale(model) == 0.0
    done = informative(model, torch.zeros(1, 3, 8, 8))
    assert _scale(model) > TINY_OUTPUT and "all-zero parameters" in done[0] and not model.training


def test_a_fading_signal_gets_batch_norm_statistics_from_random_inputs():
    model = _net(zero_head=False, fading=True)
    assert _scale(model) < TINY_OUTPUT
    done = informative(model, torch.zeros(1, 3, 8, 8))
    assert _scale(model) > TINY_OUTPUT and any("batch norms re-estimated" in d for d in done)
    assert model[1].momentum == 0.1 and not model.training


def test_a_model_with_informative_outputs_is_left_as_it_was():
    model = _net(zero_head=False, fading=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert informative(model, torch.zeros(1, 3, 8, 8)) == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
