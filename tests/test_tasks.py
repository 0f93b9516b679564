"""Tasks beyond classification through the public API: a segmentation net and a regressor of a user's own,
on real images (scikit-learn's digits), with the task's loss, metric, direction and intervals."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import edgeprune
from byom.dense_tasks import TinyRegressor, TinySegNet, regression_loaders, segmentation_loaders, trained
from edgeprune import tasks
from edgeprune.errors import DataError, ModelError

FAST_MAM = {"criteria": ["magnitude", "gradient"], "strategies": ["balanced"], "calib_batches": 2}
FINETUNE = {"epochs": 1, "max_batches": 4}


@pytest.fixture(scope="module")
def seg_model():
    return trained(TinySegNet(width=16), segmentation_loaders(), tasks.Segmentation(), epochs=1)


@pytest.fixture(scope="module")
def reg_model():
    return trained(TinyRegressor(width=16), regression_loaders(), tasks.Regression(), epochs=2)


def test_segmentation_metrics_agree_with_torchmetrics():
    torchmetrics = pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(0)
    logits, masks = torch.randn(6, 5, 8, 8, generator=g), torch.randint(0, 5, (6, 8, 8), generator=g)
    masks[:, :2] = 255  # ignored pixels
    task = tasks.Segmentation()
    got = task.reduce(task.example_statistics(logits, masks))
    pred = logits.argmax(1)
    miou = torchmetrics.classification.MulticlassJaccardIndex(5, average="macro", ignore_index=255)(pred, masks)
    acc = torchmetrics.classification.MulticlassAccuracy(5, average="micro", ignore_index=255)(pred, masks)
    assert got["miou"] == pytest.approx(float(miou), abs=1e-6)
    assert got["pixel_acc"] == pytest.approx(float(acc), abs=1e-6)


def test_regression_metrics_and_direction():
    task = tasks.Regression()
    pred, y = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([[1.0], [3.0], [2.0]])
    got = task.reduce(task.example_statistics(pred, y))
    assert got == pytest.approx({"mse": 5 / 3, "mae": 1.0})
    assert task.better(1.0, 2.0) and not task.better(2.0, 1.0)
    assert tasks.score_of({"metric": "mse", "metric_higher": False, "val_mse": 2.0}) == -2.0



def test_a_one_channel_segmenter_is_binary_foreground_above_zero():
    # one output channel: a sigmoid's foreground logit (smp with classes=1); loss = binary cross-entropy
    torchmetrics = pytest.importorskip("torchmetrics")
    g = torch.Generator().manual_seed(0)
    z, masks = torch.randn(4, 1, 8, 8, generator=g), torch.randint(0, 2, (4, 8, 8), generator=g)
    task = tasks.Segmentation()
    bce = nn.functional.binary_cross_entropy_with_logits(z[:, 0], masks.float())
    assert float(task.loss(z, masks)) == pytest.approx(float(bce), rel=1e-5)
    got = task.reduce(task.example_statistics(z, masks))
    miou = torchmetrics.classification.BinaryJaccardIndex()  # foreground IoU; ours: mean of both classes'
    background = torchmetrics.classification.BinaryJaccardIndex()(1 - (z[:, 0] > 0).long(), 1 - masks)
    assert got["miou"] == pytest.approx((float(miou(z[:, 0] > 0, masks)) + float(background)) / 2, abs=1e-6)



@pytest.mark.slow
def test_the_default_call_on_a_model_of_few_weights_calibrates_as_close_as_one_weight_allows():
    # 88 prunable weights: 80 % is 70.4 of them; every strategy once failed "cannot be met within 0.1 pp" and the call
    # with them
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))  # ink or background
    data = tuple(_binary(loader) for loader in segmentation_loaders())
    pruned = edgeprune.prune(model, data, task="segmentation", finetune={"epochs": 1, "max_batches": 2})
    assert pruned.record["status"] == "ok"
    assert any(c["id"].startswith("mam-") for c in pruned.candidates)
    assert all(abs(c["sparsity"] - 0.8) <= 1 / 88 for c in pruned.candidates if c["id"].startswith("mam-"))

def _binary(loader):
    x, y = loader.dataset.tensors
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (y > 0).long().unsqueeze(1)), loader.batch_size)


@pytest.mark.slow
def test_a_binary_segmenter_with_mask_images_learns_in_one_call():
    # the user's loader yields [B, 1, H, W] masks (torchvision's PILToTensor of a mask image) for a one-channel model
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 1, 1))
    data = tuple(_binary(loader) for loader in segmentation_loaders())
    pruned = edgeprune.prune(model, data, task="segmentation", budget=0.5, finetune={"epochs": 2}, **FAST_MAM)
    assert pruned.record["status"] == "ok" and pruned.record["metric"] == "miou"
    assert pruned.record["test_miou"] > 0.8  # ink against background: the untrained input model scores 0.22-0.28
    assert pruned.model(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)

@pytest.mark.slow
def test_segmentation_net_pruned_in_one_call(seg_model):
    dense_miou = tasks.Segmentation().primary(seg_model, segmentation_loaders()[1])
    pruned = edgeprune.prune(seg_model, segmentation_loaders(), task="segmentation", budget=0.5, finetune=FINETUNE, **FAST_MAM)
    record = pruned.record
    assert record["status"] == "ok" and record["metric"] == "miou" and "val_acc" not in record
    lo, hi = record["test_miou_ci"]
    assert lo <= record["test_miou"] <= hi and 0.0 <= record["test_pixel_acc"] <= 1.0
    assert pruned.dense["val_miou"] == pytest.approx(dense_miou)
    assert record["sparsity"] == pytest.approx(0.5, abs=0.05)
    out = pruned.model.eval()(torch.zeros(2, 1, 16, 16))
    assert set(out) == {"out", "aux"} and out["out"].shape == (2, 11, 16, 16)  # every output kept


@pytest.mark.slow
def test_segmentation_channels_removed_keep_the_head(seg_model):
    pruned = edgeprune.prune(seg_model, segmentation_loaders(), task="segmentation", budget="params<=60%",
                             granularity="channel", finetune=FINETUNE, **FAST_MAM)
    assert pruned.record["status"] == "ok" and pruned.record["params"] <= 0.6 * pruned.dense["params"] + 1
    assert pruned.model.head.out_channels == 11 and pruned.model.aux.out_channels == 11
    assert math.isfinite(pruned.record["test_miou"])


def test_regression_candidates_chosen_by_lowest_validation_error(reg_model):
    pruned = edgeprune.prune(reg_model, regression_loaders(), task="regression", budget=0.5, finetune=FINETUNE,
                             criteria=["magnitude", "gradient"], strategies=["balanced"], calib_batches=2)
    ok = [r for r in pruned.candidates if r["status"] == "ok"]
    assert len(ok) >= 2 and pruned.record["val_mse"] == min(r["val_mse"] for r in ok)
    assert pruned.record["metric_higher"] is False and pruned.record["test_mae"] >= 0


@pytest.mark.slow
def test_a_users_own_task_from_two_callables(reg_model):
    def loss_fn(output, y):
        return nn.functional.smooth_l1_loss(output, y)

    def metric_fn(outputs, ys):  # share of predictions within half a digit of the truth
        return {"within_half": float(((outputs - ys).abs() < 0.5).float().mean()), "bias": float((outputs - ys).mean())}

    task = tasks.Custom(loss_fn, metric_fn, name="digit-value", metric="within_half")
    pruned = edgeprune.prune(reg_model, regression_loaders(), task=task, budget=0.5, finetune=FINETUNE, **FAST_MAM)
    record = pruned.record
    assert record["metric"] == "within_half" and 0.0 <= record["val_within_half"] <= 1.0
    assert "test_bias" in record and record["test_within_half_ci"][0] <= record["test_within_half"]


def test_masks_of_another_size_are_one_line_errors(seg_model):
    train, val, test = segmentation_loaders()
    x, y = next(iter(val))
    bad = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y[:, :8, :8]), 64)
    with pytest.raises(DataError, match=r"masks of size \(8, 8\) for images of size \(16, 16\)"):
        edgeprune.prune(seg_model, (train, bad, test), task="segmentation", finetune=0, **FAST_MAM)


def test_masks_with_more_classes_than_the_model_predicts_are_one_line_errors():
    # was: "TinySegNet rejects a training batch ... (IndexError: Target 8 is out of bounds.); a larger image size?"
    with pytest.raises(DataError, match=r"a mask holds class 10 but the model predicts 5 classes \(0..4, 255 = ignore\)"):
        edgeprune.prune(TinySegNet(classes=5), segmentation_loaders(), task="segmentation", finetune=0, **FAST_MAM)


def test_a_task_that_does_not_fit_the_model_is_refused_before_work(seg_model, reg_model):
    with pytest.raises(DataError, match="not class labels\\? pass task="):
        edgeprune.prune(seg_model, segmentation_loaders())  # a segmenter's data under the default task
    with pytest.raises(ModelError, match="must return logits \\[batch, classes, h, w\\]"):
        edgeprune.prune(reg_model, segmentation_loaders(), task="segmentation")


def test_a_loss_that_is_not_a_scalar_and_a_metric_that_is_nan(reg_model):
    per_example = tasks.Custom(lambda out, y: (out - y).pow(2), lambda o, y: 0.0)
    with pytest.raises(ModelError, match="loss returned \\(64, 1\\); expected a scalar"):
        edgeprune.prune(reg_model, regression_loaders(), task=per_example, finetune=FINETUNE, **FAST_MAM)
    nan_metric = tasks.Custom(lambda out, y: (out - y).pow(2).mean(), lambda o, y: float("nan"))
    with pytest.raises(DataError, match="metric 'metric' is nan"):
        edgeprune.prune(reg_model, regression_loaders(), task=nan_metric, finetune=FINETUNE, **FAST_MAM)


def test_unknown_task_names_what_is_allowed():
    with pytest.raises(edgeprune.errors.ConfigError, match="unknown task 'segmentaton'; allowed: classification"):
        tasks.get("segmentaton")


@pytest.mark.slow
def test_the_exported_segmenter_scores_in_onnx_runtime_as_in_pytorch(seg_model, tmp_path):
    from edgeprune.export.onnx import export_verified, ort_metrics, ort_session

    _, val, test = segmentation_loaders()
    x = next(iter(val))[0][:8]
    info = export_verified(seg_model, tmp_path / "seg.onnx", x)  # parity on both outputs ("out", "aux")
    task = tasks.Segmentation()
    got = ort_metrics(ort_session(info["path"]), seg_model, x[:1], test, task)
    assert got == pytest.approx(task.evaluate(seg_model, test), abs=1e-4)
