"""DeepInversion data-free inputs: a small CNN trained on the real 8×8 digits, its BN statistics matched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.data.inversion import bn_matching_loss, synthesize, synthetic_loader
from edgeprune.errors import ConfigError, ModelError

SHAPE = (1, 8, 8)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    return (images - images.mean()) / images.std(), torch.tensor(bunch.target)


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.fixture(scope="module")
def trained(digits):
    """2 × (conv, BN, ReLU) and a Linear, 300 Adam steps on the digits (~1 s; ~100% train accuracy)."""
    images, labels = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    picks = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(len(images), (64,), generator=picks)
        loss = nn.functional.cross_entropy(model(images[idx]), labels[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        assert (model(images).argmax(1) == labels).float().mean() > 0.9
    return model


def _noise(n: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(123))


def test_synthesized_inputs_match_bn_statistics_far_better_than_noise(trained, digits):
    synthetic = synthesize(trained, 128, SHAPE, steps=200, seed=0)
    assert synthetic.shape == (128, *SHAPE) and synthetic.dtype == torch.float32
    noise_loss = bn_matching_loss(trained, _noise(128, SHAPE))
    real_loss = bn_matching_loss(trained, digits[0][:128])
    synthetic_loss = bn_matching_loss(trained, synthetic)
    assert real_loss < noise_loss  # the measure itself tells real data from noise
    assert synthetic_loss < noise_loss / 5, (synthetic_loss, noise_loss)
    with torch.no_grad():
        predicted = trained(synthetic).argmax(1)
    assert predicted.unique().numel() >= 4  # not collapsed onto one class


def test_targets_spread_the_inputs_over_the_classes(trained):
    synthetic = synthesize(trained, 40, SHAPE, steps=100, batch_size=20, targets=True, seed=0)
    with torch.no_grad():
        predicted = trained(synthetic).argmax(1)
    assert predicted.unique().numel() >= 8
    assert bn_matching_loss(trained, synthetic) < bn_matching_loss(trained, _noise(40, SHAPE)) / 5


def test_model_left_as_it_was_even_in_train_mode_and_under_no_grad(trained):
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    grads_before = [None if p.grad is None else p.grad.clone() for p in trained.parameters()]
    trained.train()
    trained[7].eval()  # a mixed mode is restored module by module
    trained[0].bias.requires_grad_(False)
    try:
        with torch.no_grad():
            synthesize(trained, 8, SHAPE, steps=5, progress=True)
        assert trained.training and trained[1].training and not trained[7].training
        assert [p.requires_grad for p in trained.parameters()] == [True, False] + [True] * 8
        for p, grad in zip(trained.parameters(), grads_before):
            assert (p.grad is None) == (grad is None) and (grad is None or torch.equal(p.grad, grad))
        after = trained.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included
    finally:
        trained.eval()
        trained[0].bias.requires_grad_(True)


def test_same_seed_same_inputs_other_seed_other_inputs(trained):
    first = synthesize(trained, 10, SHAPE, steps=20, batch_size=4, seed=3)
    assert first.shape == (10, *SHAPE)  # the last batch is smaller
    assert torch.equal(first, synthesize(trained, 10, SHAPE, steps=20, batch_size=4, seed=3))
    assert not torch.equal(first, synthesize(trained, 10, SHAPE, steps=20, batch_size=4, seed=4))


def test_loader_yields_batches_of_inputs_only(trained):
    loader = synthetic_loader(trained, 10, SHAPE, batch_size=4, steps=5)
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(4, *SHAPE), (4, *SHAPE), (2, *SHAPE)]
    assert all(isinstance(b, torch.Tensor) for b in batches)


def test_conv1d_model_with_batchnorm1d():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(3, 6, 5, padding=2), nn.BatchNorm1d(6), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * 32, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 4))
    model.train()
    with torch.no_grad():  # running statistics of a shifted, scaled signal: N(0, 1) noise does not match them
        for _ in range(50):
            model(2.0 + 3.0 * torch.randn(64, 3, 32))
    model.eval()
    synthetic = synthesize(model, 32, (3, 32), steps=150, batch_size=32)
    assert synthetic.shape == (32, 3, 32)
    assert bn_matching_loss(model, synthetic) < bn_matching_loss(model, _noise(32, (3, 32))) / 5


def test_refusals_are_one_line_errors(trained):
    no_bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ModelError, match="has no BatchNorm layer: .*pass calibration data"):
        synthesize(no_bn, 4, SHAPE)
    with pytest.raises(ModelError, match="has no BatchNorm layer"):
        bn_matching_loss(no_bn, _noise(4, SHAPE))
    with pytest.raises(ModelError, match=r"cannot take inputs of shape \(3, 8, 8\)"):
        synthesize(trained, 4, (3, 8, 8), steps=1)
    for bad in ({"n": 0}, {"n": -3}, {"steps": 0}, {"batch_size": 0}, {"lr": 0.0}, {"tv_weight": -1.0},
                {"input_shape": ()}, {"input_shape": (1, 0, 8)}):
        args = {"n": 4, "input_shape": SHAPE, **bad}
        with pytest.raises(ConfigError) as caught:
            synthesize(trained, args.pop("n"), args.pop("input_shape"), **args)
        assert "\n" not in str(caught.value)
