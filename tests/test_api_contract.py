"""The contract every registered method meets (as scikit-learn's check_estimator): on a model class of the
user's own and their DataLoaders, ``edgeprune.prune`` meets the budget, leaves the input model untouched,
returns a model that runs, and that saves and loads back into a fresh instance of the user's class."""

from __future__ import annotations

import copy

import pytest
import torch

import edgeprune
from byom.mynet import MyNet, build
from byom.userdata import BUDGETS, FAST_OPTIONS, FINETUNE, loaders, trained_model
from edgeprune.methods.base import get_method


@pytest.fixture(scope="module")
def user_model():
    return trained_model()


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(edgeprune.list_methods()))
def test_method_contract(method, user_model, tmp_path):
    data = loaders()
    user_model.train()  # as it leaves the user's training loop
    before = copy.deepcopy(user_model.state_dict())
    budget = BUDGETS.get(method, 0.6)
    pruned = edgeprune.prune(user_model, data, method=method, budget=budget, finetune=FINETUNE,
                             **FAST_OPTIONS.get(method, {}))

    for key, value in user_model.state_dict().items():  # the input model is untouched
        assert torch.equal(value, before[key]), key
    assert all(m.training for m in user_model.modules())  # its mode too: the KD teacher once stayed in eval mode
    assert pruned.model is not user_model
    assert abs(pruned.record["budget_achieved"] - budget) <= get_method(method).budget_tolerance
    assert pruned.record["status"] == "ok" and pruned.record["method"] == method
    assert 0.0 <= pruned.record["val_acc"] <= 1.0 and "test_acc" in pruned.record

    x = next(iter(data[2]))[0][:5]
    out = pruned.model.eval()(x)
    assert out.shape == (5, 10) and torch.isfinite(out).all()

    path = edgeprune.save(pruned, tmp_path / "pruned.pt")
    for fresh in (MyNet(), build):  # an instance, or a factory
        loaded = edgeprune.load(path, model=fresh)
        assert isinstance(loaded, MyNet)
        assert torch.allclose(loaded(x), out, atol=1e-6)
    structured = pruned.record["params"] < pruned.dense["params"]
    assert structured == (method in ("vbp", "reconvene", "structured"))
