"""SNIP = |(sum over batches of dL_b/dw) * w|, checked against a manual backward loop."""

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import scores


def test_snip_is_abs_of_summed_gradient_times_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    g = torch.Generator().manual_seed(3)
    batches = [(torch.randn(5, 2, 6, 6, generator=g), torch.randint(0, 4, (5,), generator=g)) for _ in range(2)]
    got = scores.compute("snip", model, batches)

    model.zero_grad()
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()  # .grad accumulates the sum over batches
    for name in ("0.weight", "3.weight"):
        p = model.get_parameter(name)
        expected = (p.grad * p.detach()).abs()
        torch.testing.assert_close(got[name], expected, rtol=1e-5, atol=1e-8)
