"""A candidate whose training diverges (loss NaN/inf) is trained again from the same start at a tenth of the
learning rate with gradients clipped, at most twice; the record lists each divergence. Found by the public-API contract: SqueezeNet's
default call failed with "training loss became nan" on every candidate."""

from __future__ import annotations

import pytest
import torch

import edgeprune
from byom.userdata import loaders, trained_model
from edgeprune.train import TrainConfig, TrainingDiverged, fit


def _prune(lr: float):
    return edgeprune.prune(trained_model(), loaders(), method="magnitude", budget=0.5,
                           finetune={"epochs": 1, "max_batches": 4, "lr": lr, "patience": None})


def test_a_diverging_fine_tune_is_retried_at_a_lower_learning_rate():
    with pytest.warns(UserWarning, match=r"training loss became .* training again at lr=.*, gradients clipped to norm 1"):
        pruned = _prune(100.0)
    record = pruned.record
    assert record["status"] == "ok" and 1 <= len(record["lr_retries"]) <= 2
    assert record["lr_retries"][0]["lr"] == 100.0 and "training loss became" in record["lr_retries"][0]["diverged"]
    assert record["lr"] == pytest.approx(100.0 * 0.1 ** len(record["lr_retries"]))
    assert record["clip_grad_norm"] == 1.0 and record["lr_retries"][0]["clip_grad_norm"] is None
    assert 0.0 <= record["val_acc"] <= 1.0
    assert all(bool(p.isfinite().all()) for p in pruned.model.parameters())


def test_a_stable_fine_tune_is_not_retried():
    record = _prune(0.01).record
    assert "lr_retries" not in record and "clip_grad_norm" not in record


def test_a_fine_tune_that_diverges_at_every_rate_fails_in_one_line():
    with pytest.warns(UserWarning), pytest.raises(edgeprune.errors.ConfigError, match="training loss became"):
        _prune(1e12)


def test_clipped_gradients_bound_every_step():
    """Plain SGD with clip_grad_norm=c moves the weights by at most lr * c per step, whatever the loss's scale."""
    model = trained_model()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # logits in the thousands: unclipped gradients are large
    train, val, _ = loaders()
    start = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    cfg = TrainConfig(epochs=1, max_batches=1, lr=0.5, momentum=0.0, weight_decay=0.0, clip_grad_norm=0.01)
    fit(model, train, val, cfg, progress=False)
    moved = torch.cat([p.detach().flatten() for p in model.parameters()]) - start
    assert 0 < float(moved.norm()) <= 0.5 * 0.01 * 1.0001


def test_weights_made_non_finite_by_the_last_step_are_caught():
    """One step at lr=1e39 turns finite weights into infinities while the loss that led to it was finite: the
    epoch's check of the weights catches what the per-step loss check cannot."""
    train, val, _ = loaders()
    cfg = TrainConfig(epochs=1, max_batches=1, lr=1e39, momentum=0.0, weight_decay=0.0)
    with pytest.raises(TrainingDiverged, match="training made weights non-finite in epoch 1"):
        fit(trained_model(), train, val, cfg, progress=False)
