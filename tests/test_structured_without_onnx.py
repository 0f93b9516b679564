"""A model ONNX cannot express (an operator without a translation) is still pruned by the default structured call: its
deploy metrics (ONNX bytes, ONNX Runtime latency) are optional and left out with a one-line warning naming the
operator. Asked for by name, they are refused in one line before anything is trained, as before. timm's SAM ViT was
refused this way by the zoo contract (its 3-D attention, since exported)."""

import warnings

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.errors import ModelError


class BesselNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):  # torch.special.i0: "op prims.bessel_i0.default has no ONNX translation"
        x = torch.special.i0(torch.tanh(self.conv1(x)))
        return self.fc(torch.relu(self.conv2(x)).mean((2, 3)))


@pytest.fixture
def data():
    torch.manual_seed(0)
    return tiny_data(torch.zeros(1, 3, 8, 8), 4)


def test_the_default_call_prunes_and_says_the_deploy_metrics_are_left_out(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = edgeprune.prune(BesselNet(), data, method="structured", finetune=1)
    said = [str(w.message) for w in caught if "deploy metrics" in str(w.message)]
    assert len(said) == 1 and "bessel_i0" in said[0], said
    assert pruned.record["status"] == "ok" and pruned.record["params"] < pruned.dense["params"]
    assert "ort_latency_ms_b1" not in pruned.record and "onnx_bytes" not in pruned.record
    assert pruned.model(torch.zeros(2, 3, 8, 8)).shape == (2, 4)


def test_deploy_metrics_asked_for_by_name_are_refused_before_training(data, monkeypatch):
    from edgeprune.train import loop

    monkeypatch.setattr(loop, "fit", lambda *a, **k: pytest.fail("trained before the refusal"))
    with pytest.raises(ModelError, match="bessel_i0"):
        edgeprune.prune(BesselNet(), data, method="structured", deploy_metrics=True)
