"""Structured Mix-and-Match under typed budgets: every calibrated strategy fits the budget as measured on
the final model's own record; an unreachable budget is one line naming the smallest reachable value."""

import pytest

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.errors import ConfigError

OPTIONS = dict(granularity="channel", criteria=["magnitude", "gradient"], strategies=["balanced", "late_heavy"],
               calib_batches=2, deploy_metrics=False)


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits")


def resnet(splits):
    return models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("budget,field,limit", [("macs<=45%", "macs", 0.45), ("params<=30%", "params", 0.30)])
def test_every_candidate_fits_a_relative_budget(digits, budget, field, limit):
    model = resnet(digits)
    pruned = edgeprune.prune(model, digits, method="mix_and_match", budget=budget, finetune=0, **OPTIONS)
    assert len(pruned.candidates) == 4
    for record in pruned.candidates:
        assert record["status"] == "ok" and record["budget_text"] == budget
        assert record[field] <= limit * pruned.dense[field], record["id"]
        assert record[field] > 0.5 * limit * pruned.dense[field], record["id"]  # calibrated, not over-pruned
        assert record["budget_achieved"] == record[field]
    assert pruned.record["params"] < pruned.dense["params"]


@pytest.mark.slow
def test_a_plain_sparsity_removes_that_share_of_the_prunable_weights(digits):
    pruned = edgeprune.prune(resnet(digits), digits, method="mix_and_match", budget=0.6, finetune=0, **OPTIONS)
    for record in pruned.candidates:
        assert 0.6 <= record["budget_achieved"] < 0.7, record["id"]


def test_an_unreachable_budget_names_the_smallest_reachable_value(digits):
    with pytest.raises(ConfigError) as exc:
        edgeprune.prune(resnet(digits), digits, method="mix_and_match", budget="params<=100", finetune=0, **OPTIONS)
    message = str(exc.value)
    assert "params<=100" in message and "smallest reachable params" in message and "\n" not in message


@pytest.mark.parametrize("budget", ["latency<=2ms", "macs<=40%"])
def test_typed_budgets_need_channel_granularity(digits, budget):
    with pytest.raises(ConfigError, match="granularity='channel'"):
        edgeprune.prune(resnet(digits), digits, method="mix_and_match", budget=budget, finetune=0)


@pytest.mark.parametrize("budget", ["latency<=2", "size<=1.5MB@b32", "macs<=140%", "speed>=2x"])
def test_a_malformed_budget_is_refused_before_any_work(digits, budget):
    with pytest.raises(ConfigError, match="allowed: a sparsity"):
        edgeprune.prune(resnet(digits), digits, method="mix_and_match", budget=budget, finetune=0, **OPTIONS)


@pytest.mark.slow
def test_an_unreachable_latency_names_the_fastest_measured_latency(digits):
    with pytest.raises(ConfigError) as exc:
        edgeprune.prune(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), digits,
                        method="mix_and_match", budget="latency<=0.0001ms", finetune=0,
                        **{**OPTIONS, "strategies": ["balanced"], "criteria": ["magnitude"], "latency_runs": 5})
    message = str(exc.value)
    assert "smallest reachable latency is" in message and " ms " in message and "\n" not in message
