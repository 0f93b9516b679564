"""Data whose batches are not (x, y) tensor pairs, or that yields nothing, is a one-line DataError naming
what was found, wherever it enters: fit, accuracy, calibration_batches, Data.from_loaders, statistics."""

import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import edgeprune
from edgeprune import data, scores
from edgeprune.errors import DataError
from edgeprune.measure import accuracy
from edgeprune.scores.activations import input_statistics
from edgeprune.train import TrainConfig, fit

X = torch.randn(8, 1, 4, 4)
Y = torch.arange(8) % 2
GOOD = DataLoader(TensorDataset(X, Y), batch_size=4)

BAD = {
    # a dict batch is (x, y) under their usual keys (pixel_values/labels, image/label, x/y...): not these
    "dict": (DataLoader([{"img": x, "cls": int(y)} for x, y in zip(X, Y)], batch_size=4),
             ["training data", "dict batches with keys ['cls', 'img']", "pixel_values", "labels", "or (x, y) tensor pairs"]),
    "single tensor": (DataLoader(X, batch_size=4), ["batches that are a float32 tensor of shape (4, 1, 4, 4)", "(x, y)"]),
    "float labels": (DataLoader(TensorDataset(X, Y.float()), batch_size=4),
                     ["labels y as a float32 tensor of shape (4,)", "expected an integer class tensor of shape (4,)",
                      "a single sigmoid logit (BCE)", "task=edgeprune.tasks.Custom(loss_fn, metric_fn)"]),
    "uint8 images": (DataLoader(TensorDataset((X * 50).to(torch.uint8), Y), batch_size=4),
                     ["x as a uint8 tensor", "floating-point"]),
    "three items": (DataLoader(TensorDataset(X, Y, Y), batch_size=4), ["a list of 3 items", "(x, y)"]),
    "short labels": (DataLoader(list(zip(X, [torch.tensor([0, 1])] * 8)), batch_size=4),
                     ["labels y as a int64 tensor of shape (4, 2)", "shape (4,)"]),
    "empty": (DataLoader(TensorDataset(X[:0], Y[:0]), batch_size=4), ["training data is empty", "no batch"]),
    # a transform to tensors forgotten: was torch's "TypeError: default_collate: batch must contain tensors ..."
    "PIL images": (DataLoader([(Image.new("L", (4, 4)), 0)] * 8, batch_size=4),
                   ["training data holds items its DataLoader cannot stack", "PIL.Image.Image", "ToTensor()"]),
}


def model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def check(info, needles, what="training data"):
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle.replace("training data", what) in message, (needle, message)


@pytest.mark.parametrize("case", list(BAD))
def test_training_with_bad_batches_is_a_data_error(case):
    loader, needles = BAD[case]
    with pytest.raises(DataError) as info:
        fit(model(), loader, GOOD, TrainConfig(epochs=1), progress=False)
    check(info, needles)
    with pytest.raises(DataError) as info:
        data.Data.from_loaders(loader, GOOD)
    check(info, needles)


@pytest.mark.parametrize("case", list(BAD))
def test_evaluation_and_calibration_with_bad_batches_are_data_errors(case):
    loader, needles = BAD[case]
    with pytest.raises(DataError) as info:
        accuracy(model(), loader)
    check(info, needles, "evaluation data")
    with pytest.raises(DataError) as info:
        scores.calibration_batches(loader, 2)
    check(info, needles, "calibration data")


def test_validation_data_is_checked_too_and_good_data_passes():
    net = model()
    with pytest.raises(DataError, match="evaluation data yields dict batches with keys"):
        fit(net, GOOD, BAD["dict"][0], TrainConfig(epochs=1), progress=False)
    x, y = data.check_batch((X, Y.to(torch.int32)), "training data")
    assert x is X and y.dtype == torch.int64 and torch.equal(y, Y)


def test_statistics_need_only_x_but_not_nothing():
    net = model()
    moments = input_statistics(net, {"fc": net[1]}, DataLoader(X, batch_size=4))["fc"]  # bare inputs are fine
    assert moments.count == 8
    with pytest.raises(DataError, match="calibration data is empty"):
        input_statistics(net, {"fc": net[1]}, BAD["empty"][0])
    with pytest.raises(DataError, match="calibration data yields dict batches with keys"):
        input_statistics(net, {"fc": net[1]}, BAD["dict"][0])


def test_the_default_call_on_pil_images_is_one_line():
    loader = BAD["PIL images"][0]
    with pytest.raises(DataError, match="cannot stack into a batch: PIL.Image.Image; give the dataset a transform"):
        edgeprune.prune(model(), (loader, loader))
