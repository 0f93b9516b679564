"""A sparsity budget is bisected on the sparsity the kept widths give (no pruned copy per step), then measured on
the pruned model; where pruning does not give the predicted widths, every step is measured as before."""

import pytest
import torch

from edgeprune import strategies as strategies_lib
from edgeprune.api_contract import tiny_data
from edgeprune.methods import structured_mam
from edgeprune.runs import request as request_lib

tv = pytest.importorskip("torchvision")
EXAMPLE = torch.zeros(1, 3, 32, 32)


def _state(model, **options):
    request = request_lib.resolve_request(model.eval(), tiny_data(EXAMPLE, 10), "structured",
                                          {"deploy_metrics": False, "criteria": ["magnitude"], **options}, budgets=0.5)
    return request.method, request.method.prepare(request.inputs.model, request.inputs.data, request.inputs.example)


@pytest.mark.parametrize("build", [lambda: tv.models.resnet18(num_classes=10),
                                   lambda: tv.models.mobilenet_v3_small(num_classes=10),
                                   lambda: tv.models.VisionTransformer(32, 8, 2, 4, 32, 64, num_classes=10),
                                   lambda: tv.models.regnet_y_400mf(num_classes=10),  # grouped convs
                                   lambda: tv.models.shufflenet_v2_x0_5(num_classes=10)],  # pruned inside its blocks
                         ids=["resnet18", "mobilenet_v3_small", "vit", "regnet_y_400mf", "shufflenet"])
def test_the_predicted_sparsity_is_the_pruned_models(build):
    torch.manual_seed(0)
    _, state = _state(build())
    for name in strategies_lib.names_for(state.roles)[:4]:
        vector = strategies_lib.build(name, state.ranges, state.roles)
        for shift in (-0.5, 0.0, 0.6):
            shifted = structured_mam._shifted(vector, state.ranges, shift)
            exact = structured_mam._value(state, shifted, 0.5, 0, True)
            assert structured_mam._predicted_sparsity(state, shifted, 0.5, 0) == pytest.approx(exact, abs=1e-9)


def _calibrated(model, monkeypatch, budget):
    method, state = _state(model, strategies=["balanced", "late_heavy"])
    copies = []
    real = structured_mam.pruned_copy
    monkeypatch.setattr(structured_mam, "pruned_copy", lambda *a, **k: copies.append(1) or real(*a, **k))
    plan = method.candidates(state, [budget], [0])
    return state, plan, len(copies)


def test_calibrating_to_a_sparsity_prunes_a_copy_per_strategy_not_per_step(monkeypatch):
    torch.manual_seed(0)
    state, plan, copies = _calibrated(tv.models.resnet18(num_classes=10), monkeypatch, 0.6)
    assert copies <= 2 * 2, copies  # two strategies: before, a copy at each of ten bisection steps
    for candidate in plan:
        achieved = structured_mam._value(state, candidate.setting["sparsities"], 0.6, 0, True)
        assert 0.6 <= achieved < 0.65, (candidate.id, achieved)


def test_where_pruning_keeps_a_group_whole_every_step_is_measured(monkeypatch):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)  # torch-pruning cannot map some of FasterNet's groups (a split), which the prediction prunes
    model = timm.create_model("fasternet_t0", num_classes=10, depths=(1, 1, 1, 1), embed_dim=16)
    state, plan, copies = _calibrated(model, monkeypatch, 0.25)
    assert copies > 2 * 2
    for candidate in plan:
        assert 0.25 <= structured_mam._value(state, candidate.setting["sparsities"], 0.25, 0, True) < 0.3
