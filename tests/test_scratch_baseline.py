"""The scratch baseline (issue 30): the input architecture narrowed uniformly to the budget, re-initialised and trained
from scratch, as a candidate beside the pruned ones, through the public call."""

import warnings

import pytest
import torch

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.errors import ConfigError
from edgeprune.train import default_config, fit


@pytest.fixture(scope="module")
def setup():
    digits = data_lib.load("digits", seed=0)
    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    fit(model, digits.train, digits.val, default_config("cnn").replace(epochs=4, batch_size=64))
    return model.eval(), digits


def test_the_scratch_candidate_is_narrowed_to_the_budget_and_trained_from_scratch(setup):
    model, digits = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned = edgeprune.prune(model, digits, method="structured", budget="macs<=50%", finetune=1, scratch_epochs=3,
                                 criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    scratch = next(c for c in pruned.candidates if c["setting"].get("scratch"))
    dense_macs = pruned.dense["macs"]
    assert scratch["id"].startswith("scratch-uniform") and scratch["macs"] <= 0.5 * dense_macs
    assert scratch["decided"]["scratch"] == {"epochs": 3} and scratch["epochs_run"] == 3
    assert scratch["val_acc_pruned"] < 0.5  # fresh weights: nothing of the input model is left
    assert scratch["val_acc"] > 0.5  # and it learnt


def test_scratch_epochs_is_checked_up_front(setup):
    model, digits = setup
    with pytest.raises(ConfigError, match="scratch_epochs"):
        edgeprune.prune(model, digits, method="structured", scratch_epochs=-1)
    with pytest.raises(ConfigError, match="scratch_epochs"):
        edgeprune.prune(model, digits, method="mix_and_match", scratch_epochs=3)  # weights keep the architecture
