"""A latency bisection keeps the least-pruned model that once timed inside the limit, so one lucky (noisy) timing
lets a too-slow model through (issue 26's detection benchmark: calibrated at 2.04x, 1.37x side by side). The
choice is timed again, longer, and pruned further until it fits: here the short timings are optimistic by 0.5x and
the longer ones exact (the speed-up is the ONNX file size ratio, a stand-in for time that the test controls)."""

from pathlib import Path

import pytest
import torch

import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.export.onnx import export_onnx
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method
from edgeprune.select import meter as meter_lib

LUCK = 0.5


def true_speedup(dense: Path, candidate: Path) -> float:
    return dense.stat().st_size / candidate.stat().st_size


@pytest.fixture
def noisy_timing(monkeypatch):
    def paired(dense, candidate, batch_size=1, runs=20, **kw):
        short = runs < 20 * meter_lib.CONFIRM_FACTOR
        return {"ratio": true_speedup(Path(dense), Path(candidate)) + (LUCK if short else 0.0)}

    monkeypatch.setattr(meter_lib, "paired_latency", paired)


@pytest.mark.slow
def test_the_bisections_choice_is_confirmed_by_a_longer_timing(noisy_timing, tmp_path):
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    options = get_method("structured", criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False,
                         round_to=1, latency_table=False).options  # the bisection on whole-model timings
    state = structured_mam.prepare(model, data_lib.load("digits"), torch.randn(2, 1, 8, 8), options)
    budget = parse("latency<=50%")  # a speed-up of at least 2x
    vector = structured_mam.strategy_vectors(state, ["balanced"], budget)["balanced"]
    small, _ = structured_mam.pruned_copy(state, model, vector, budget)
    export_onnx(model, tmp_path / "dense.onnx", input_shape=(1, 8, 8))
    export_onnx(small, tmp_path / "small.onnx", input_shape=(1, 8, 8))
    assert true_speedup(tmp_path / "dense.onnx", tmp_path / "small.onnx") >= 2.0  # without the confirmation: < 2
    calibrated = state.calibrated[(str(budget), "balanced", 0)]
    _, limit = state.meter.limit(budget)
    assert calibrated["measured"] <= limit


def test_a_confirming_timing_keeps_the_worse_of_two(monkeypatch):
    # issue 29: a model calibrated on a pinned device read 49 % of the input model's latency in its one confirming
    # timing and 60 % in eleven of twelve timings after: one far-off timing must not decide
    ratios = iter([1 / 0.37, 1 / 0.60, 1 / 0.37])
    monkeypatch.setattr(meter_lib, "paired_latency", lambda *a, **kw: {"ratio": next(ratios)})
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    meter = meter_lib.Meter(model, torch.zeros(1, 1, 8, 8))
    budget = parse("latency<=50%")
    dense = meter.dense_value(budget)
    small = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    assert meter.value(small, budget, confirm=True) == pytest.approx(0.60 * dense)
    assert meter.value(small, budget) == pytest.approx(0.37 * dense)  # a bisection's step: one timing


@pytest.mark.parametrize("load, warned", [(99.0, True), (0.0, False)])
def test_a_latency_budget_timed_on_a_busy_machine_warns_once(monkeypatch, load, warned):
    """Other work slows the input model (weights from memory) more than a small candidate (weights in its core's
    cache): a speed-up timed beside it reads high, so the user is told, once per calibration."""
    import os
    import warnings

    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(meter_lib, "paired_latency", lambda *a, **k: {"ratio": 2.0})
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=28)
    meter = meter_lib.Meter(model, torch.zeros(1, 1, 28, 28), latency_runs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        small = models.create("lenet5", num_classes=10, in_channels=1, image_size=28)
        values = [meter.value(small, parse("latency<=50%")) for _ in range(2)]
    busy = [w for w in caught if "looks busy" in str(w.message)]
    assert len(busy) == (1 if warned else 0) and values[0] > 0
    assert not busy or "latency<=50%" in str(busy[0].message) and "load average 99.00" in str(busy[0].message)
