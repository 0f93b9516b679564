"""A candidate whose training diverges (loss NaN/inf) is trained again from the same start at a tenth of the
learning rate, at most twice; the record lists each divergence. Found by the public-API contract: SqueezeNet's
default call failed with "training loss became nan" on every candidate."""

from __future__ import annotations

import pytest

import edgeprune
from byom.userdata import loaders, trained_model


def _prune(lr: float):
    return edgeprune.prune(trained_model(), loaders(), method="magnitude", budget=0.5,
                           finetune={"epochs": 1, "max_batches": 4, "lr": lr, "patience": None})


def test_a_diverging_fine_tune_is_retried_at_a_lower_learning_rate():
    with pytest.warns(UserWarning, match=r"training loss became .* training again at lr="):
        pruned = _prune(100.0)
    record = pruned.record
    assert record["status"] == "ok" and 1 <= len(record["lr_retries"]) <= 2
    assert record["lr_retries"][0]["lr"] == 100.0 and "training loss became" in record["lr_retries"][0]["diverged"]
    assert record["lr"] == pytest.approx(100.0 * 0.1 ** len(record["lr_retries"]))
    assert 0.0 <= record["val_acc"] <= 1.0
    assert all(bool(p.isfinite().all()) for p in pruned.model.parameters())


def test_a_stable_fine_tune_is_not_retried():
    assert "lr_retries" not in _prune(0.01).record


def test_a_fine_tune_that_diverges_at_every_rate_fails_in_one_line():
    with pytest.warns(UserWarning), pytest.raises(edgeprune.errors.ConfigError, match="training loss became"):
        _prune(1e12)
