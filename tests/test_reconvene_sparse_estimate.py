"""PaIConfig(sparse_artifact=False): the sparse size is a labelled estimate (bitmap + non-zero FP32 values)."""

import math

from torch import nn

from edgeprune.methods.reconvene import _sparse_bytes


def test_estimate_without_artifact(tmp_path):
    model = nn.Linear(10, 3)
    with_zeros = model.weight.numel() - 5
    nn.init.zeros_(model.bias)
    model.weight.data.view(-1)[:with_zeros] = 0
    size, kind = _sparse_bytes(model, tmp_path / "m.epz", {}, write=False)
    assert kind == "estimate"
    assert size == 5 * 4 + math.ceil(30 / 8) + math.ceil(3 / 8)
    assert not (tmp_path / "m.epz").exists()
