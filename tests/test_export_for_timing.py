"""A latency bisection times files of the fast TorchScript exporter (a tenth of a second where the dynamo exporter
takes seconds, a minute for YOLOv8n); only its confirmation times the file the shipped exporter writes."""

import numpy as np
import pytest
import torch

import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.export.onnx import export_for_timing, ort_session
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method
from edgeprune.select import meter as meter_lib


def test_the_timing_export_runs_any_batch_in_onnx_runtime_with_the_models_outputs(tmp_path):
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=16, width_mult=0.5).eval()
    info = export_for_timing(model, tmp_path / "t.onnx")
    assert info["exporter"].startswith("torchscript")
    session = ort_session(tmp_path / "t.onnx")
    for batch in (1, 5):
        x = torch.randn(batch, 1, 16, 16)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)


class Unfolds(torch.nn.Module):
    """``Tensor.unfold`` of a tensor reshaped by its own sizes: the TorchScript exporter fails on it (as on timm's
    HaloNet, "input size not accessible")."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Linear(4, 10)

    def forward(self, x):
        y = self.conv(x)
        y = y.reshape(-1, 4, y.shape[-2], y.shape[-1])
        return self.head(torch.nn.functional.pad(y, [1, 1, 1, 1]).unfold(2, 4, 2).mean((2, 3, 4)))


def test_a_failed_fast_export_prints_nothing_and_falls_back(tmp_path, capfd):
    # torch's TorchScript exporter leaves its ONNX log on and prints the whole graph from C++ when an export fails
    model = Unfolds().eval()
    for _ in range(2):  # (the second export is the one that found the log left on)
        info = export_for_timing(model, tmp_path / "u.onnx", input_shape=(1, 8, 8))
    assert not info["exporter"].startswith("torchscript")
    captured = capfd.readouterr()
    assert "graph" not in captured.err and "graph" not in captured.out, captured.err[:300]
    session = ort_session(tmp_path / "u.onnx")
    x = torch.randn(3, 1, 8, 8)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4)


@pytest.mark.slow
def test_a_latency_bisection_times_fast_exports_and_confirms_on_the_shipped_one(monkeypatch):
    calls = {"shipped": 0, "timing": 0}

    def counted(name, real):
        def export(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return export

    monkeypatch.setattr(meter_lib, "export_onnx", counted("shipped", meter_lib.export_onnx))
    monkeypatch.setattr(meter_lib, "export_for_timing", counted("timing", meter_lib.export_for_timing))
    # 16 px, not 8: at 8 px the runtime's fixed cost is ~70 % of the latency, so 70 % sits at the floor under load
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=16, width_mult=0.5)
    options = get_method("structured", criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False,
                         round_to=1, latency_runs=5, latency_table=False).options  # the bisection on timings
    state = structured_mam.prepare(model, data_lib.load("digits"), torch.randn(2, 1, 16, 16), options)
    budget = parse("latency<=70%")
    structured_mam.strategy_vectors(state, ["balanced"], budget)
    calibrated = state.calibrated[(str(budget), "balanced", 0)]
    assert calibrated["measured"] <= state.meter.limit(budget)[1]
    # every bisection step (at least the two ends and the steps between) on the fast export; the shipped exporter
    # for the input model's reference file and each confirmation (at most structured_mam.CONFIRMATIONS)
    assert calls["timing"] >= 4
    assert 2 <= calls["shipped"] <= 1 + structured_mam.CONFIRMATIONS


@pytest.mark.slow
def test_a_latency_table_proposal_is_confirmed_on_fast_exports_only(monkeypatch):
    calls = {"shipped": 0}

    def shipped(*args, **kwargs):
        calls["shipped"] += 1
        return real(*args, **kwargs)

    real = meter_lib.export_onnx
    monkeypatch.setattr(meter_lib, "export_onnx", shipped)
    table_fit = []  # per table confirmation: did its timing fit? (a miss under load falls back to the bisection,
    real_confirm = structured_mam._confirm  # which confirms on the shipped file)

    def confirm(state, table, budget, *args):
        out = real_confirm(state, table, budget, *args)
        table_fit.append(state.meter.limit(budget)[0](out[2]))
        return out

    monkeypatch.setattr(structured_mam, "_confirm", confirm)
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=16, width_mult=0.5)
    options = get_method("structured", criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False,
                         round_to=1, latency_runs=5).options
    state = structured_mam.prepare(model, data_lib.load("digits"), torch.randn(2, 1, 16, 16), options)
    budget = parse("latency<=70%")
    structured_mam.strategy_vectors(state, ["balanced"], budget)
    assert state.calibrated[(str(budget), "balanced", 0)]["measured"] <= state.meter.limit(budget)[1]
    assert table_fit, "the latency table did not propose"
    if table_fit[-1]:
        assert calls["shipped"] == 0  # ONNX Runtime runs the fast export as fast; the deploy metrics time the shipped file
