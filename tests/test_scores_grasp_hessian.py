"""GraSP's Hessian-gradient product against an explicit Hessian (torch.autograd.functional.hessian)."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.functional import hessian
from torch.func import functional_call

from edgeprune import scores


def test_grasp_matches_explicit_hessian_times_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g))
               for _ in range(2)]
    T = 2.0
    names = ["0.weight", "2.weight"]
    shapes = [model.get_parameter(n).shape for n in names]
    sizes = [s.numel() for s in shapes]
    w0 = torch.cat([model.get_parameter(n).detach().reshape(-1) for n in names])
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in names}

    def total_loss(flat):
        params = {n: part.reshape(s) for n, part, s in zip(names, flat.split(sizes), shapes)}
        return sum(F.cross_entropy(functional_call(model, {**fixed, **params}, (x,)) / T, y) for x, y in batches)

    w = w0.clone().requires_grad_(True)
    grad = torch.autograd.grad(total_loss(w), w)[0]
    H = hessian(total_loss, w0)
    expected = w0 * (H @ grad)  # = -S(-w) of GraSP: higher = keep

    got = scores.compute("grasp", model, batches, temperature=T)
    got_abs = scores.compute("grasp_abs", model, batches, temperature=T)
    flat_got = torch.cat([got[n].reshape(-1) for n in names]).double()
    torch.testing.assert_close(flat_got, expected, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(torch.cat([got_abs[n].reshape(-1) for n in names]).double(), expected.abs(),
                               rtol=1e-4, atol=1e-7)
    assert (expected < 0).any() and (expected > 0).any()  # the sign convention is actually exercised


def test_grasp_on_a_linear_model_is_zero():
    """A loss that is linear in the weights has no curvature: H g = 0, so every GraSP score is 0."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2, bias=False))
    batches = [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))]
    got = scores.compute("grasp", model, batches, loss_fn=lambda logits, y: logits.sum())
    assert torch.count_nonzero(got["0.weight"]) == 0
