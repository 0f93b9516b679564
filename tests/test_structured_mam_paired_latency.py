"""A relative latency budget is measured side by side with the input model: machine load that slows both
alike does not move a candidate's measured latency, and paired_latency times two real ONNX Runtime sessions."""

import pytest
import torch

import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.export.onnx import export_onnx
from edgeprune.export.ort_latency import paired_latency
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method
from edgeprune.select import meter as meter_lib


@pytest.mark.slow
def test_paired_latency_times_both_files(tmp_path):
    paths = []
    for width in (4, 64):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, width, 3), torch.nn.ReLU(), torch.nn.Conv2d(width, 4, 3)).eval()
        paths.append(tmp_path / f"w{width}.onnx")
        export_onnx(model, paths[-1], input_shape=(1, 16, 16))
    timed = paired_latency(paths[0], paths[1], batch_size=2, runs=5)
    assert timed["first"]["median_ms"] > 0 and timed["second"]["median_ms"] > 0


@pytest.mark.slow
def test_load_that_slows_both_models_alike_leaves_the_measurement(monkeypatch):
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    options = get_method("mix_and_match", granularity="channel", criteria=["magnitude"]).options
    state = structured_mam.prepare(model, data_lib.load("digits"), torch.randn(2, 1, 8, 8), options)
    budget = parse("latency<=50%")
    state.meter.cache[("dense", budget.quantity)] = 1.0  # the input model's reference latency: 1 ms
    load = {"factor": 1.0}
    monkeypatch.setattr(meter_lib, "paired_latency",
                        lambda dense, candidate, *a, **k: {"ratio": (2.0 * load["factor"]) / (0.8 * load["factor"])})
    small, _ = structured_mam.pruned_copy(state, model, {}, budget)
    quiet = state.meter.value(small, budget)
    load["factor"] = 3.0  # the machine got busy: both run 3x slower
    busy = state.meter.value(small, budget)
    assert quiet == pytest.approx(0.4) and busy == pytest.approx(0.4)  # 0.8 / 2.0 of the 1 ms reference
    assert state.meter.value(small, parse("latency<=5ms")) != pytest.approx(0.4)  # absolute: as measured
