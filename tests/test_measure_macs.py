import torch
from torch import nn

from edgeprune.measure import macs


def test_conv_and_linear_macs_match_the_formula():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    lin = nn.Linear(8 * 6 * 6, 10)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(6), nn.Flatten(), lin)
    report = macs(model, torch.zeros(1, 3, 12, 12))
    conv_macs = 8 * 12 * 12 * 3 * 3 * 3  # C_out * H_out * W_out * C_in * k * k
    lin_macs = 8 * 6 * 6 * 10
    assert report.per_layer == {"0": conv_macs, "4": lin_macs}
    assert report.dense == conv_macs + lin_macs
    assert report.effective == report.dense


def test_effective_macs_scale_with_layer_density():
    lin1, lin2 = nn.Linear(20, 30), nn.Linear(30, 5)
    model = nn.Sequential(lin1, nn.ReLU(), lin2)
    with torch.no_grad():
        lin1.weight[:, :15] = 0  # density 0.25
    report = macs(model, torch.zeros(2, 20))
    assert report.dense == 2 * (20 * 30 + 30 * 5)
    assert report.effective == 2 * (20 * 30 // 4 + 30 * 5)
