"""Iterative SynFlow equals a plain re-implementation: score the masked |θ|, prune globally to p_k, repeat."""

import copy

import torch
from torch import nn

from edgeprune import scores
from edgeprune.prune.masks import prune_lowest


def _reference_keep(model: nn.Module, p: float, rounds: int, shape) -> torch.Tensor:
    masked = copy.deepcopy(model)
    weights = [m.weight for m in masked.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    total = sum(w.numel() for w in weights)
    keep = torch.ones(total, dtype=torch.bool)
    for k in range(1, rounds + 1):
        got = scores.compute("synflow", masked, input_shape=shape)  # single shot on the masked weights
        flat = torch.cat([s.reshape(-1) for s in got.values()]).double()
        flat[~keep] = -float("inf")
        p_k = p if k == rounds else 1.0 - (1.0 - p) ** (k / rounds)
        keep = prune_lowest(flat, round(p_k * total))
        with torch.no_grad():
            for w, m in zip(weights, torch.split(keep, [w.numel() for w in weights])):
                w.mul_(m.reshape(w.shape))
    return keep


def test_iterative_synflow_matches_the_plain_loop_on_a_small_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    p, rounds = 0.9, 15
    got = scores.compute("synflow", model, input_shape=(2, 6, 6), sparsity=p, rounds=rounds)
    keep = torch.cat([s.reshape(-1) for s in got.values()]) >= 0
    assert torch.equal(keep, _reference_keep(model, p, rounds, (2, 6, 6)))
