"""gradient = mean over batches of |dL/dw| (not |mean dL/dw|), product = |w| * gradient, model left untouched."""

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import scores


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Dropout(0.2), nn.Linear(7, 3))


def _batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(3)]


def _manual_grads(model, batches, seed=0):
    """The paper code's loop: train mode, CE loss, loss.backward per batch; dropout seeded like compute."""
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(seed)
    model.train()
    per_batch = []
    for x, y in batches:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        per_batch.append({n: model.get_parameter(n).grad.clone() for n in ("0.weight", "4.weight")})
    model.load_state_dict(ref)
    model.zero_grad(set_to_none=True)
    return per_batch


def test_gradient_is_mean_of_per_batch_absolute_gradients():
    model, batches = _net(), _batches()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = scores.compute("gradient", model, batches)
    assert list(got) == ["0.weight", "4.weight"]
    per_batch = _manual_grads(_net(), batches)
    for name, score in got.items():
        mean_abs = sum(g[name].abs() for g in per_batch) / 3
        abs_mean = (sum(g[name] for g in per_batch) / 3).abs()
        assert score.dtype == torch.float32 and score.device.type == "cpu"
        torch.testing.assert_close(score, mean_abs, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(score, abs_mean, rtol=1e-3, atol=1e-6), name  # the two definitions differ
    # pure: weights, BN running statistics, mode and .grad untouched
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_product_is_magnitude_times_gradient():
    model, batches = _net(), _batches()
    grad = scores.compute("gradient", model, batches)
    prod = scores.compute("product", model, batches)
    mag = scores.compute("magnitude", model)
    for name in grad:
        torch.testing.assert_close(mag[name], model.get_parameter(name).detach().abs())
        torch.testing.assert_close(prod[name], mag[name] * grad[name], rtol=1e-6, atol=1e-9)


def test_eval_mode_option_changes_the_gradient():
    model, batches = _net(), _batches()
    train = scores.compute("gradient", model, batches)
    evaluated = scores.compute("gradient", model, batches, mode="eval")
    assert not torch.allclose(train["0.weight"], evaluated["0.weight"])
