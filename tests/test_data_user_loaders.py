"""Plain ``DataLoader(TensorDataset(...))`` objects work wherever edgeprune takes data: fit, accuracy,
calibration_batches, INT8 calibration/evaluation and activation statistics use them as they are."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import edgeprune
from edgeprune import data, models, scores
from edgeprune.export import evaluate_int8
from edgeprune.measure import accuracy, predict_logits
from edgeprune.scores.activations import input_statistics
from edgeprune.train import TrainConfig, fit


def tensors(dataset):
    """All (x, y) of an ImageDataset as plain tensors."""
    return dataset.__getitems__(list(range(len(dataset))))


def plain_loaders(splits, batch_size=50):
    sets = {name: TensorDataset(*tensors(splits.split(name))) for name in ("train", "val", "test")}
    train = DataLoader(sets["train"], batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    return train, DataLoader(sets["val"], batch_size=batch_size), DataLoader(sets["test"], batch_size=batch_size)


def test_fit_and_accuracy_take_user_loaders():
    splits = data.load("digits", seed=0)
    train, val, test = plain_loaders(splits)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    # the loader's batch size (50) wins over the config's (64): 3 batches = 150 examples per epoch
    capped = fit(model, train, val, TrainConfig(epochs=1, batch_size=64, max_batches=3, seed=0), progress=False)
    assert capped.history[0]["examples"] == 150
    result = fit(model, train, val, TrainConfig(epochs=4, batch_size=64, lr=0.05, seed=0), progress=False)
    assert [h["examples"] for h in result.history] == [len(splits.train)] * 4
    assert result.best_val_acc > 0.85
    assert abs(accuracy(model, val) - result.best_val_acc) < 1e-9  # best epoch restored, measured on the loader
    # the same images through the dataset and through the user's loader give the same logits
    logits_loader, labels_loader = predict_logits(model, test)
    logits_dataset, labels_dataset = predict_logits(model, splits.test)
    torch.testing.assert_close(logits_loader, logits_dataset)
    assert torch.equal(labels_loader, labels_dataset) and len(labels_loader) == len(splits.test)
    assert accuracy(model, test) == accuracy(model, splits.test) > 0.85


def test_calibration_batches_are_the_first_batches_of_the_loader():
    x = torch.arange(20, dtype=torch.float32).view(20, 1, 1, 1).expand(20, 1, 2, 2).contiguous()
    y = torch.arange(20) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=8)  # 8, 8, 4
    got = scores.calibration_batches(loader, 4, batch_size=32, seed=5)  # batch_size and seed are the loader's
    assert [len(b[1]) for b in got] == [8, 8, 4, 8]  # a new pass begins after the third
    assert got[0][0][:, 0, 0, 0].tolist() == list(range(8))
    assert got[3][0][:, 0, 0, 0].tolist() == list(range(8))
    assert got[2][1].tolist() == (torch.arange(16, 20) % 3).tolist()
    bundle = data.Data.from_loaders(loader, loader)
    assert torch.equal(scores.calibration_batches(bundle, 1)[0][0], got[0][0])  # a bundle means its train


def test_int8_calibration_and_evaluation_on_user_loaders(tmp_path):
    torch.manual_seed(0)
    splits = data.load("digits", seed=0)
    train, val, test = plain_loaders(splits, batch_size=25)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    fit(model, splits.train, splits.val, TrainConfig(epochs=4, batch_size=64, lr=0.05, seed=0), progress=False)

    bundle = data.Data.from_loaders(train, val, test, num_classes=10, name="mine")
    result = evaluate_int8(model, bundle, mode="static", calib_batches=6, workdir=tmp_path)
    assert result["split"] == "test" and result["test_images"] == len(splits.test)
    assert abs(result["fp32_acc_ort"] - accuracy(model, splits.test)) < 0.01
    assert result["int8_acc_ort"] >= result["fp32_acc_ort"] - 0.05
    calibration = result["int8"]["calibration"]
    assert calibration["images"] == 6 * 25 and calibration["batch_size"] == 25
    assert "DataLoader" in calibration["split"]

    no_test = data.Data.from_loaders(train, val, num_classes=10)
    dynamic = evaluate_int8(model, no_test, mode="dynamic", workdir=tmp_path / "dyn")
    assert dynamic["split"] == "val" and dynamic["test_images"] == len(splits.val)
    assert abs(dynamic["fp32_acc_ort"] - accuracy(model, val)) < 0.01


def test_activation_statistics_from_a_user_loader():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(30, 3, 2, 2)
    loader = DataLoader(TensorDataset(x, torch.zeros(30, dtype=torch.long)), batch_size=7)
    moments = input_statistics(model, {"out": model[3]}, loader)["out"]
    with torch.no_grad():
        hidden = model[2](model[1](model[0](x))).double()
    assert moments.count == 30
    torch.testing.assert_close(moments.mean, hidden.mean(0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(moments.variance, hidden.var(0), rtol=1e-5, atol=1e-6)
    capped = input_statistics(model, {"out": model[3]}, loader, max_batches=2)["out"]
    assert capped.count == 14


class Samples(torch.utils.data.Dataset):
    """A Hugging Face datasets-style split: every item a dict under the keys given."""

    def __init__(self, dataset, keys):
        self.x, self.y = tensors(dataset)
        self.keys = keys

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {self.keys[0]: self.x[i], self.keys[1]: self.y[i], "id": i}


def test_dict_batches_are_pairs_under_their_usual_keys():
    splits = data.load("digits", seed=0)
    torch.manual_seed(0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    loaders = tuple(DataLoader(Samples(splits.split(n), ("pixel_values", "labels")), batch_size=64) for n in ("train", "val", "test"))
    pruned = edgeprune.prune(model, loaders, finetune={"epochs": 3, "lr": 0.05})  # was: "yields batches that are a dict"
    assert pruned.record["status"] == "ok" and pruned.record["test_acc"] > 0.5
    assert accuracy(pruned.model, loaders[2]) == pytest.approx(pruned.record["test_acc"])
    odd = DataLoader(Samples(splits.test, ("img", "cls")), batch_size=64)
    with pytest.raises(edgeprune.errors.DataError, match=r"dict batches with keys \['cls', 'id', 'img'\]; expected its input "
                                                         r"under one of pixel_values, image"):
        accuracy(pruned.model, odd)
