"""A relative ExecuTorch latency budget times the candidate beside the input model's program (one interleaved
measurement), never against the input model's latency timed once at another moment."""

import pytest
import torch

import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method

pytest.importorskip("executorch")
pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_relative_executorch_budget_is_a_ratio_from_one_measurement():
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    options = get_method("mix_and_match", granularity="channel", criteria=["magnitude"], deploy_metrics=False,
                         latency_runs=10).options
    state = structured_mam.prepare(model, data_lib.load("digits"), torch.randn(2, 1, 8, 8), options)
    budget = parse("latency<=50%@executorch")
    # the input model's reference as it read when timed alone on a busy machine: 1000 ms
    state.meter.cache[("dense", budget.quantity)] = 1000.0
    small, _ = structured_mam.pruned_copy(state, model, {p: 0.5 for p in state.ranges}, budget)
    measured = state.meter.value(small, budget)
    # scaled by the ratio timed beside the input model (between 1/10 and 10), not the candidate's own ms
    assert 100.0 < measured < 10_000.0
