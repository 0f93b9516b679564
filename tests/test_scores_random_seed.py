"""random scores are seeded: same seed, same scores; another seed, other scores; global RNG untouched."""

import torch
from torch import nn

from edgeprune import scores


def test_random_scores_follow_the_seed():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(16, 2))
    state = torch.get_rng_state()
    a = scores.compute("random", model, seed=7)
    b = scores.compute("random", model, seed=7)
    c = scores.compute("random", model, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)
    assert {n: tuple(s.shape) for n, s in a.items()} == {"0.weight": (4, 1, 3, 3), "2.weight": (2, 16)}
    assert all(float(s.min()) >= 0 and float(s.max()) < 1 for s in a.values())
