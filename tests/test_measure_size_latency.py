import torch
from torch import nn

from edgeprune.measure import latency, nonzeros, param_count, prunable_weights, sparsity


def test_sparsity_counts_only_conv_and_linear_weights():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    assert list(prunable_weights(model)) == ["0.weight", "3.weight"]
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()  # biases are not in the denominator
    assert sparsity(model) == 36 / (36 + 288)
    assert sparsity(model, per_layer=True)["0.weight"] == 1.0
    assert param_count(model) == 36 + 4 + 8 + 288 + 2
    assert nonzeros(model) == param_count(model) - 36 - 4 - 4  # conv w, conv b, BN bias (zeros at init)


def test_latency_is_positive_and_batch_32_is_slower_per_call():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
    one = latency(model, (1, 28, 28), batch_size=1, runs=20, threads=1)
    big = latency(model, (1, 28, 28), batch_size=32, runs=20, threads=1)
    assert 0 < one["median_ms"] < big["median_ms"]
    assert one["threads"] == 1 and one["cpu"]
    assert one["p10_ms"] <= one["median_ms"] <= one["p90_ms"]
