from edgeprune import data, models
from edgeprune.measure import accuracy
from edgeprune.train import TrainConfig, fit


def test_lenet5_learns_digits_above_90_percent_in_a_few_epochs():
    splits = data.load("digits", seed=0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    cfg = TrainConfig(epochs=4, batch_size=64, lr=0.05, seed=0)
    result = fit(model, splits.train, splits.val, cfg, progress=False)
    assert result.epochs_run == 4
    assert result.best_val_acc > 0.9
    assert accuracy(model, splits.test) > 0.9
    # the restored weights are the best validation epoch's
    assert abs(accuracy(model, splits.val) - result.best_val_acc) < 1e-9
